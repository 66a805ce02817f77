"""RAPL and Jetson meters against recorded sysfs trees.

The trees under tests/fixtures/sysfs have the real kernel layouts and file formats with FAKE values
(see its README). Tests that need counters to move copy a tree and rewrite values between samples;
clocks are fakes (`iter([...]).__next__`) so the expected joules are exact.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tasks.errors import GreenlaneError
from tasks.measurement.meters import jetson, rapl

SYSFS = Path(__file__).resolve().parents[1] / "fixtures" / "sysfs"
MAX_UJ = 262143328850  # max_energy_range_uj of the recorded package zones


def copy_tree(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(SYSFS / name, tmp_path / name))


def write(path: Path, value: int) -> None:
    path.write_text(f"{value}\n")  # sysfs integer format: decimal and a newline


# --- RAPL


def test_rapl_sums_package_and_dram_only():
    assert [z.label for z in rapl.find_zones(SYSFS / "rapl-server")] == ["dram-0", "dram-1", "package-0", "package-1"]
    # laptop: core/uncore are inside the package and psys overlaps it
    assert [z.label for z in rapl.find_zones(SYSFS / "rapl-laptop")] == ["dram-0", "package-0"]
    assert rapl.available(SYSFS / "rapl-server")
    assert not rapl.available(SYSFS / "jetson-xavier")


def test_rapl_reading_is_counter_difference(tmp_path):
    root = copy_tree("rapl-server", tmp_path)
    meter = rapl.RaplMeter(sysfs_root=root, poll_s=None, clock=iter([10.0, 12.5]).__next__)
    meter.start()
    pc = root / "class/powercap"
    write(pc / "intel-rapl:0/energy_uj", 123456789012 + 150_000_000)  # +150 J
    write(pc / "intel-rapl:1/energy_uj", 123457789012 + 100_000_000)  # +100 J
    write(pc / "intel-rapl:0:0/energy_uj", 34567890123 + 20_000_000)  # +20 J
    reading = meter.stop()
    assert reading.source == "rapl" and reading.measured
    assert reading.energy_j == pytest.approx(270.0)
    assert reading.duration_s == 2.5
    assert reading.details["package_j"] == pytest.approx(250.0)
    assert reading.details["dram_j"] == pytest.approx(20.0)
    assert reading.details["dram-1_j"] == 0 and reading.details["counter_wraps"] == 0


def test_rapl_wraparound_once_and_twice(tmp_path):
    root = copy_tree("rapl-laptop", tmp_path)
    counter = root / "class/powercap/intel-rapl:0/energy_uj"
    write(counter, MAX_UJ - 1_000_000)  # 1 J before the wrap
    meter = rapl.RaplMeter(sysfs_root=root, poll_s=None, clock=iter([0.0, 1.0]).__next__)
    meter.start()
    write(counter, 4_000_000)
    assert meter.stop().details["package-0_j"] == pytest.approx(5.0)

    # Two wraps in one window are only visible if something reads in between: the poll thread's job.
    write(counter, MAX_UJ - 1_000_000)
    meter = rapl.RaplMeter(sysfs_root=root, poll_s=None, clock=iter([0.0, 1.0]).__next__)
    meter.start()
    for value in (2_000_000, 200_000_000_000):
        write(counter, value)
        meter.poll()
    write(counter, 500_000)
    reading = meter.stop()
    expected_j = 1 + 2 + (200_000_000_000 - 2_000_000) / 1e6 + (MAX_UJ - 200_000_000_000 + 500_000) / 1e6
    assert reading.details["package-0_j"] == pytest.approx(expected_j)
    assert reading.details["counter_wraps"] == 2


def test_rapl_poll_thread_runs_and_stops():
    meter = rapl.RaplMeter(sysfs_root=SYSFS / "rapl-server", poll_s=0.01)
    meter.start()
    time.sleep(0.05)
    reading = meter.stop()
    assert reading.energy_j == 0 and meter._thread is None  # static fixture: counters never moved


def test_rapl_missing_tree_is_a_user_error(tmp_path):
    with pytest.raises(GreenlaneError, match="no RAPL package/dram zones"):
        rapl.RaplMeter(sysfs_root=tmp_path)


def test_rapl_root_only_counter_is_a_user_error(monkeypatch):
    # Kernels >= 5.10 make energy_uj mode 0400; simulated because these tests may run as root.
    def denied(zone):
        raise PermissionError(13, "Permission denied", str(zone.energy_path))

    monkeypatch.setattr(rapl._Zone, "read_uj", denied)
    assert not rapl.available(SYSFS / "rapl-laptop")
    with pytest.raises(GreenlaneError, match="CVE-2020-8694"):
        rapl.RaplMeter(sysfs_root=SYSFS / "rapl-laptop")


# --- Jetson INA3221


def test_jetson_finds_rails_in_both_layouts():
    nano = jetson.JetsonMeter(sysfs_root=SYSFS / "jetson-orin-nano", threaded=False)
    assert [r.label for r in nano.rails] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]  # not the in7 sum channel
    assert nano.summed == ["VDD_IN"]  # the module total; the others are inside it
    assert nano.rails[0].power_w() == pytest.approx(5.064 * 1.328)  # mV x mA

    agx = jetson.JetsonMeter(sysfs_root=SYSFS / "jetson-agx-orin", threaded=False)
    assert agx.summed == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"]  # NC channels dropped

    xavier = jetson.JetsonMeter(sysfs_root=SYSFS / "jetson-xavier", threaded=False)
    assert xavier.summed == ["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"]
    assert xavier.rails[1].power_w() == pytest.approx(1.085)  # in_power is mW


def test_jetson_integrates_power_with_trapezoids(tmp_path):
    root = copy_tree("jetson-orin-nano", tmp_path)
    hwmon = root / "class/hwmon/hwmon1"
    write(hwmon / "in1_input", 5000)  # 5.000 V on VDD_IN
    clock = iter([0.0, 1.0, 3.0, 3.5]).__next__
    meter = jetson.JetsonMeter(sysfs_root=root, clock=clock, threaded=False)
    write(hwmon / "curr1_input", 1000)
    meter.start()  # 5 W at t = 0
    write(hwmon / "curr1_input", 2000)
    meter.poller.sample()  # 10 W at t = 1
    meter.poller.sample()  # 10 W at t = 3
    write(hwmon / "curr1_input", 0)  # 0 W at t = 3.5, stop's final sample
    reading = meter.stop()
    assert reading.source == "jetson-ina3221"
    assert reading.duration_s == 3.5
    assert reading.energy_j == pytest.approx(7.5 + 20.0 + 2.5)  # (5+10)/2*1 + 10*2 + (10+0)/2*0.5
    assert reading.details["samples"] == 4 and reading.details["max_sample_gap_s"] == 2.0
    assert reading.details["VDD_SOC_j"] == pytest.approx(3.5 * 5.064 * 0.680)


def test_jetson_threaded_short_window_matches_constant_power():
    meter = jetson.JetsonMeter(sysfs_root=SYSFS / "jetson-xavier", poll_s=0.01)
    meter.start()
    time.sleep(0.1)
    reading = meter.stop()
    assert reading.details["samples"] >= 3
    total_w = (310 + 1085 + 1240 + 155 + 465 + 1702) / 1e3
    assert reading.energy_j == pytest.approx(total_w * reading.duration_s)


def test_jetson_rail_choice_and_errors(tmp_path):
    meter = jetson.JetsonMeter(sysfs_root=SYSFS / "jetson-agx-orin", rails=["VDD_GPU_SOC"], threaded=False)
    assert meter.summed == ["VDD_GPU_SOC"]
    with pytest.raises(GreenlaneError, match=r"\['VDD_GPU'\] not found; this board has: VDD_GPU_SOC"):
        jetson.JetsonMeter(sysfs_root=SYSFS / "jetson-agx-orin", rails=["VDD_GPU"])
    with pytest.raises(GreenlaneError, match="not a Jetson"):
        jetson.JetsonMeter(sysfs_root=SYSFS / "rapl-server")
    assert not jetson.available(tmp_path)
