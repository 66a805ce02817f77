"""The meter registry, automatic selection, the explicit estimate and polling."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pytest

from tasks.errors import GreenlaneError
from tasks.measurement.meters import METERS, make_meter, select_meter
from tasks.measurement.meters._poll import PowerPoller
from tasks.measurement.meters.estimate import EstimateMeter

SYSFS = Path(__file__).resolve().parents[1] / "fixtures" / "sysfs"  # recorded trees: real layout, fake values


class NoGpu:
    """A FAKE pynvml whose init fails, as on this GPU-less machine (see test_nvml_meter for the full fake)."""

    class NVMLError(Exception):
        pass

    def nvmlInit(self):
        raise self.NVMLError("Driver Not Loaded")


@pytest.mark.parametrize("name", sorted(METERS))
def test_every_registered_meter_resolves(name):
    module, _, attr = METERS[name].partition(":")
    factory = getattr(importlib.import_module(module), attr)
    assert factory.name == name and callable(factory.start) and callable(factory.stop)


@pytest.mark.parametrize(
    "tree, expected",
    [("rapl-server", "RaplMeter"), ("jetson-orin-nano", "JetsonMeter"), ("no-such-tree", "CodecarbonMeter")],
)
def test_auto_prefers_counters_then_falls_back_to_codecarbon(tree, expected, tmp_path):
    meter = select_meter("auto", sysfs_root=SYSFS / tree, nvml=NoGpu(), output_dir=tmp_path)
    assert type(meter).__name__ == expected


def test_forced_meter_gets_only_its_own_options(tmp_path):
    meter = select_meter("estimate", watts_per_core=5.0, sysfs_root=SYSFS / "rapl-server", output_dir=tmp_path)
    assert isinstance(meter, EstimateMeter) and meter.watts_per_core == 5.0
    with pytest.raises(GreenlaneError, match=r"\['sysfs_rot'\] are not accepted by any meter"):
        select_meter("rapl", sysfs_rot="/sys")
    with pytest.raises(GreenlaneError, match="choose one of: auto, codecarbon, estimate, jetson, nvml, rapl"):
        select_meter("powerjoular")
    with pytest.raises(GreenlaneError, match="unknown energy meter"):
        make_meter("powerjoular")


def test_estimate_states_its_model():
    cpu_s, clock = iter([1.0, 3.0]).__next__, iter([0.0, 4.0]).__next__
    meter = EstimateMeter(watts_per_core=10, ram_w=3, cpu_seconds=cpu_s, clock=clock)
    meter.start()
    reading = meter.stop()
    assert reading.source == "estimate:cpu-time-x-10w-per-core+3w-ram" and not reading.measured
    assert reading.energy_j == pytest.approx(2.0 * 10 + 4.0 * 3)  # 2 CPU-seconds + 4 s of RAM
    with pytest.raises(GreenlaneError, match="watts_per_core must be >= 0"):
        EstimateMeter(watts_per_core=-1)


def test_poller_surfaces_a_failure_in_its_thread():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) > 1:
            raise OSError("rail vanished")
        return {"x": 1.0}

    poller = PowerPoller(flaky, poll_s=0.001)
    poller.start()
    while len(calls) < 2:
        time.sleep(0.001)
    with pytest.raises(RuntimeError, match="power polling failed mid-window: rail vanished"):
        poller.stop()


class OneGpu(NoGpu):
    """A FAKE pynvml that sees one GPU (the full fake, with counters, is in test_nvml_meter)."""

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        return 0


@pytest.mark.parametrize("device, tree, expected", [
    ("cpu", "rapl-server", "RaplMeter"),        # a CPU benchmark on a GPU machine reads the CPU package,
    ("cpu", "no-such-tree", "CodecarbonMeter"),  # ... or estimates it, never the idle GPU's NVML counter
    ("cuda", "rapl-server", "NvmlMeter"),       # a GPU benchmark reads the GPU even where RAPL exists
])
def test_auto_meter_follows_the_targets_device(device, tree, expected, tmp_path):
    from tasks.measurement.meters import DEVICE_AUTO_ORDER

    meter = select_meter("auto", order=DEVICE_AUTO_ORDER[device], sysfs_root=SYSFS / tree, nvml=OneGpu(),
                         output_dir=tmp_path)
    assert type(meter).__name__ == expected
