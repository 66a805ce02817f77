"""NVML meter against a FAKE pynvml module object (this machine has no GPU).

The fake implements the handful of pynvml calls the meter uses with pynvml's units: the total-energy
counter in millijoules, power in milliwatts, NVMLError for unsupported queries. The real path is
tested only where pynvml initialises (skipped otherwise).
"""

from __future__ import annotations

import time

import pytest

from tasks.errors import GreenlaneError
from tasks.measurement.meters import nvml as nvml_meter


class FakeNvml:
    class NVMLError(Exception):
        pass

    def __init__(self, counters_mj=(0,), power_mw=(0,), fail_init=False):
        """`counters_mj[i] is None` marks a pre-Volta GPU without the energy counter."""
        self.counters_mj = list(counters_mj)
        self.power_mw = list(power_mw)
        self.fail_init = fail_init

    def nvmlInit(self):
        if self.fail_init:
            raise self.NVMLError("NVML Shared Library Not Found")

    def nvmlDeviceGetCount(self):
        return len(self.counters_mj)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i  # a real handle is an opaque pointer; the index is all the fake needs

    def nvmlDeviceGetHandleByUUID(self, uuid):
        return int(uuid.rsplit("-", 1)[1])

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if self.counters_mj[h] is None:
            raise self.NVMLError("Not Supported")
        return self.counters_mj[h]

    def nvmlDeviceGetPowerUsage(self, h):
        return self.power_mw[h]


@pytest.fixture(autouse=True)
def _no_cuda_visible_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_counter_difference_over_all_gpus():
    fake = FakeNvml(counters_mj=[1_000_000, 5_000_000])
    meter = nvml_meter.NvmlMeter(nvml=fake, clock=iter([0.0, 2.0]).__next__)
    meter.start()
    fake.counters_mj = [1_001_500, 5_002_500]
    reading = meter.stop()
    assert reading.source == "nvml" and reading.measured
    assert reading.energy_j == pytest.approx(4.0)
    assert reading.details == {
        "gpu0_j": 1.5,
        "gpu0_method": "total-energy-counter",
        "gpu1_j": 2.5,
        "gpu1_method": "total-energy-counter",
    }
    assert reading.duration_s == 2.0


def test_power_polling_fallback_without_counter():
    fake = FakeNvml(counters_mj=[None], power_mw=[100_000])
    meter = nvml_meter.NvmlMeter(nvml=fake, clock=iter([0.0, 0.0, 1.0, 2.0, 2.0]).__next__, threaded=False)
    meter.start()  # 100 W at t = 0
    fake.power_mw = [200_000]
    meter.poller.sample()  # 200 W at t = 1
    reading = meter.stop()  # 200 W at t = 2
    assert reading.source == "nvml:power-poll" and reading.measured
    assert reading.energy_j == pytest.approx(150.0 + 200.0)
    assert reading.details["gpu0_method"] == "power-poll" and reading.details["samples"] == 3


def test_mixed_gpus_and_threaded_polling():
    fake = FakeNvml(counters_mj=[0, None], power_mw=[0, 50_000])
    meter = nvml_meter.NvmlMeter(nvml=fake, poll_s=0.01)
    meter.start()
    time.sleep(0.05)
    fake.counters_mj[0] = 3_000
    reading = meter.stop()
    assert reading.details["gpu0_j"] == 3.0
    assert reading.details["gpu1_j"] == pytest.approx(50.0 * reading.duration_s, rel=0.2)
    assert reading.source == "nvml:power-poll"


def test_device_selection(monkeypatch):
    fake = FakeNvml(counters_mj=[0, 0, 0])
    assert nvml_meter.NvmlMeter(nvml=fake, device_indices=[2]).handles == [2]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,GPU-fake-uuid-0")
    assert nvml_meter.NvmlMeter(nvml=fake).handles == [1, 0]


def test_unusable_nvml_is_a_user_error():
    assert not nvml_meter.available(FakeNvml(fail_init=True))
    assert not nvml_meter.available(FakeNvml(counters_mj=[]))
    assert nvml_meter.available(FakeNvml())
    with pytest.raises(GreenlaneError, match="NVML is not usable here"):
        nvml_meter.NvmlMeter(nvml=FakeNvml(fail_init=True))
    with pytest.raises(GreenlaneError, match="sees no GPU"):
        nvml_meter.NvmlMeter(nvml=FakeNvml(counters_mj=[]))


def test_real_nvml_when_a_gpu_is_present():
    if not nvml_meter.available():
        pytest.skip("pynvml cannot initialise here (no NVIDIA driver or GPU)")
    meter = nvml_meter.NvmlMeter()
    meter.start()
    time.sleep(0.3)
    reading = meter.stop()
    assert reading.source.startswith("nvml") and reading.energy_j > 0
