"""An explicit energy estimate for machines with no energy counter.

Model, stated in every reading's source (e.g. `estimate:cpu-time-x-10w-per-core+3w-ram`):

    energy_j = cpu_s x watts_per_core + duration_s x ram_w

where `cpu_s` is the CPU time (user + system) this process and its waited-for
children spent in the window. It charges the work for the cores it kept busy
and for its memory over the wall-clock time, and nothing for idle cores. The
defaults are typical, not measured: ~10 W per busy core (a 100-250 W server CPU
spread over 16-32 cores, or a 15-45 W laptop CPU over 4-8) and 3 W of DRAM
(codecarbon's 3 W per 8 GB). Set both from the target's datasheet when known.
It is an estimate: compare variants with it only on the same machine.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from tasks.errors import GreenlaneError
from tasks.measurement.energy import EnergyReading


def process_cpu_s() -> float:
    """User + system CPU seconds of this process and its waited-for children."""
    # process_time has ns resolution (os.times ticks at 10 ms); children are only in os.times.
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def available() -> bool:
    return True  # needs nothing from the hardware


class EstimateMeter:
    name = "estimate"

    def __init__(
        self,
        watts_per_core: float = 10.0,
        ram_w: float = 3.0,
        cpu_seconds: Callable[[], float] = process_cpu_s,
        clock: Callable[[], float] = time.monotonic,
    ):
        for field, value in (("watts_per_core", watts_per_core), ("ram_w", ram_w)):
            if not value >= 0:
                raise GreenlaneError(f"estimate meter: {field} must be >= 0 watts, got {value!r}")
        self.watts_per_core = float(watts_per_core)
        self.ram_w = float(ram_w)
        self.cpu_seconds = cpu_seconds
        self.clock = clock
        self._start: tuple[float, float] | None = None

    @property
    def source(self) -> str:
        return f"estimate:cpu-time-x-{self.watts_per_core:g}w-per-core+{self.ram_w:g}w-ram"

    def start(self) -> None:
        self._start = (self.clock(), self.cpu_seconds())

    def stop(self) -> EnergyReading:
        if self._start is None:
            raise RuntimeError("EstimateMeter.stop() called before start()")
        t0, cpu0 = self._start
        duration_s = self.clock() - t0
        cpu_s = self.cpu_seconds() - cpu0
        self._start = None
        cpu_j = cpu_s * self.watts_per_core
        ram_j = duration_s * self.ram_w
        return EnergyReading(
            energy_j=cpu_j + ram_j,
            duration_s=duration_s,
            source=self.source,
            details={
                "cpu_s": cpu_s,
                "cpu_j": cpu_j,
                "ram_j": ram_j,
                "watts_per_core": self.watts_per_core,
                "ram_w": self.ram_w,
            },
        )
