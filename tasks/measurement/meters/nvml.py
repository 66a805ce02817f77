"""NVIDIA GPU energy from NVML.

Volta and newer GPUs keep a total-energy counter since driver load
(`nvmlDeviceGetTotalEnergyConsumption`, millijoules): energy is its difference
over the window, with no sampling error. Older GPUs only report instantaneous
power (`nvmlDeviceGetPowerUsage`, milliwatts, itself averaged over ~1 s by the
driver), so for those a thread polls and integrates; the reading's source is
then `nvml:power-poll` so a reader can tell the two apart (both are measured).

`nvml` is the pynvml module by default (package nvidia-ml-py); tests pass a
fake with the same functions. Jetson boards have no NVML; see jetson.py.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from tasks.errors import GreenlaneError
from tasks.measurement.energy import EnergyReading
from tasks.measurement.meters._poll import PowerPoller


def _load_nvml(nvml=None):
    if nvml is None:
        import pynvml as nvml
    nvml.nvmlInit()  # reference-counted by NVML, so repeated meters are fine
    return nvml


def available(nvml=None) -> bool:
    """True when NVML initialises and sees at least one GPU."""
    try:
        return _load_nvml(nvml).nvmlDeviceGetCount() > 0
    except Exception:  # ImportError, NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded, ...
        return False


def _visible_handles(nvml, device_indices):
    """Handles for `device_indices`, else for CUDA_VISIBLE_DEVICES, else for every GPU."""
    if device_indices is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
        if visible:
            ids = [v.strip() for v in visible.split(",") if v.strip()]
            by_uuid, by_index = nvml.nvmlDeviceGetHandleByUUID, nvml.nvmlDeviceGetHandleByIndex
            return [by_uuid(v) if v.startswith(("GPU-", "MIG-")) else by_index(int(v)) for v in ids]
        device_indices = range(nvml.nvmlDeviceGetCount())
    return [nvml.nvmlDeviceGetHandleByIndex(int(i)) for i in device_indices]


class NvmlMeter:
    name = "nvml"

    def __init__(
        self,
        device_indices: list[int] | None = None,
        nvml=None,
        poll_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        threaded: bool = True,
    ):
        try:
            self.nvml = _load_nvml(nvml)
            self.handles = _visible_handles(self.nvml, device_indices)
        except Exception as err:
            raise GreenlaneError(f"NVML is not usable here ({err}); choose another energy meter") from None
        if not self.handles:
            raise GreenlaneError("NVML sees no GPU; choose another energy meter")
        self.clock = clock
        self.has_counter = [self._counter_mj(h) is not None for h in self.handles]
        self.poller = None
        if not all(self.has_counter):
            self.poller = PowerPoller(self._read_power_w, poll_s=poll_s, clock=clock, threaded=threaded)
        self._start_mj: list[int | None] = []
        self._t0: float | None = None

    def _counter_mj(self, handle) -> int | None:
        try:
            return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        except self.nvml.NVMLError:  # NotSupported before Volta
            return None

    def _read_power_w(self) -> dict[str, float]:
        return {
            f"gpu{i}": self.nvml.nvmlDeviceGetPowerUsage(h) / 1e3
            for i, h in enumerate(self.handles)
            if not self.has_counter[i]
        }

    def start(self) -> None:
        if self.poller is not None:
            self.poller.start()
        self._t0 = self.clock()
        self._start_mj = [self._counter_mj(h) if c else None for h, c in zip(self.handles, self.has_counter)]

    def stop(self) -> EnergyReading:
        if self._t0 is None:
            raise RuntimeError("NvmlMeter.stop() called before start()")
        end_mj = [self._counter_mj(h) if c else None for h, c in zip(self.handles, self.has_counter)]
        duration_s = self.clock() - self._t0
        polled = self.poller.stop()[0] if self.poller is not None else {}
        self._t0 = None
        details: dict = {}
        for i, (start, end) in enumerate(zip(self._start_mj, end_mj)):
            # the counter is 64-bit and resets only on driver reload, so no wraparound to handle
            details[f"gpu{i}_j"] = (end - start) / 1e3 if start is not None else polled[f"gpu{i}"]
            details[f"gpu{i}_method"] = "total-energy-counter" if start is not None else "power-poll"
        if self.poller is not None:
            details.update(samples=self.poller.samples, max_sample_gap_s=self.poller.max_gap_s)
        return EnergyReading(
            energy_j=sum(details[f"gpu{i}_j"] for i in range(len(self.handles))),
            duration_s=duration_s,
            source="nvml" if self.poller is None else "nvml:power-poll",
            details=details,
        )
