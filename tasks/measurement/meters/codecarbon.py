"""Energy from a codecarbon tracker.

codecarbon reads RAPL where the kernel exposes it; elsewhere it models CPU
power from TDP x load and RAM power from its size. The reading's `source` says
which: `codecarbon:rapl` only when codecarbon really read counters, otherwise
`estimate:codecarbon-<mode>`. Its emissions.csv is kept in `output_dir`.

A long-lived process (the server) reads it through `windowed()` instead: one
tracker for the process's life, each window one codecarbon task.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from tasks.measurement.energy import EnergyReading

KWH_TO_J = 3.6e6


class CodecarbonMeter:
    name = "codecarbon"

    def __init__(self, output_dir: str | Path, country_iso_code: str = "USA", measure_power_secs: float = 1.0):
        self.output_dir = Path(output_dir)
        self.country_iso_code = country_iso_code
        self.measure_power_secs = measure_power_secs
        self._tracker = None
        self._t0 = 0.0

    def start(self) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._tracker = self._new_tracker(save_to_file=True)
        self._t0 = time.perf_counter()
        self._tracker.start()

    def stop(self) -> EnergyReading:
        if self._tracker is None:
            raise RuntimeError("CodecarbonMeter.stop() called before start()")
        self._tracker.stop()
        data = self._tracker.final_emissions_data
        # codecarbon integrates power until stop() returns; its own duration matches the joules.
        duration_s = float(data.duration) or (time.perf_counter() - self._t0)
        reading = _reading(data, duration_s, _source_label(self._tracker))
        self._tracker = None
        reading.details["emissions_csv"] = str(self.output_dir / "emissions.csv")
        return reading

    def windowed(self) -> CodecarbonWindows:
        """This meter read in consecutive windows of one tracker (start, lap, lap, ..., stop)."""
        return CodecarbonWindows(self)

    def _new_tracker(self, save_to_file: bool):
        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        return OfflineEmissionsTracker(
            country_iso_code=self.country_iso_code,
            output_dir=str(self.output_dir),
            save_to_file=save_to_file,
            log_level="error",
            measure_power_secs=self.measure_power_secs,
            tracking_mode="process",
            allow_multiple_runs=True,
        )


class CodecarbonWindows:
    """One codecarbon tracker for a process's life, each window one task: `start()` once, `lap()` closes the
    window and opens the next, `stop()` closes the last.

    Stopping and rebuilding a tracker per window costs ~15-25 ms of CPU (construction, output setup, a CSV row); a
    task ~10 ms (the same power and process-tree readings, nothing rebuilt). In task mode codecarbon keeps
    its periodic energy scheduler stopped and measures once at `stop_task`, over the whole window; its
    utilization sampler (the `_scheduler_monitor_power` timer thread, its only other thread) runs during
    each task. Nothing is written: a reading carries the window's figures, and emissions.csv would get the
    life's joules beside the last task's seconds. The ~3 ms between one window's end and the next's start
    (start_task's own work) fall in no window.
    """

    name = "codecarbon"

    def __init__(self, meter: CodecarbonMeter):
        self.meter = meter
        self._tracker = None

    def start(self) -> None:
        self._discard()  # a tracker left by a failed lap: its sampler must not run on beside the new one
        self.meter.output_dir.mkdir(parents=True, exist_ok=True)
        self._tracker = self.meter._new_tracker(save_to_file=False)
        self._tracker.start_task("window")

    def lap(self) -> EnergyReading:
        reading = self._end_task()
        self._tracker.start_task("window")
        return reading

    def stop(self) -> EnergyReading:
        try:
            return self._end_task()
        finally:
            self._discard()

    def _end_task(self) -> EnergyReading:
        if self._tracker is None:
            raise RuntimeError("CodecarbonWindows.lap()/stop() called before start()")
        data = self._tracker.stop_task()
        if data is None:  # start_task failed inside codecarbon (it only logs), so there was no window
            raise RuntimeError("codecarbon has no active task to stop")
        # codecarbon keeps every finished task for a final report we do not write: ~2.4 KB a window, without
        # bound over a server's life.
        self._tracker._tasks.clear()
        reading = _reading(data, float(data.duration), _source_label(self._tracker))
        # A task's cpu_power and ram_power are means over the tracker's whole life; the window's are its J / s.
        seconds = max(reading.duration_s, 1e-9)
        reading.details.update(cpu_power_w=reading.details["cpu_j"] / seconds,
                               ram_power_w=reading.details["ram_j"] / seconds)
        return reading

    def _discard(self) -> None:
        tracker, self._tracker = self._tracker, None
        if tracker is not None:
            tracker.stop()  # stops its schedulers; codecarbon's stop() swallows its own errors


def _reading(data, duration_s: float, source: str) -> EnergyReading:
    return EnergyReading(
        energy_j=float(data.energy_consumed) * KWH_TO_J,
        duration_s=duration_s,
        source=source,
        details={
            "cpu_j": float(data.cpu_energy) * KWH_TO_J,
            "ram_j": float(data.ram_energy) * KWH_TO_J,
            "gpu_j": float(data.gpu_energy) * KWH_TO_J,
            "cpu_power_w": float(data.cpu_power),
            "ram_power_w": float(data.ram_power),
            "cpu_model": str(data.cpu_model),
        },
    )


def _source_label(tracker) -> str:
    """`codecarbon:rapl` when codecarbon read RAPL counters, else an estimate label."""
    modes = []
    for hw in getattr(tracker, "_hardware", []):
        mode = getattr(hw, "_mode", None)
        if mode is not None:
            modes.append(str(mode))
    if any(m == "intel_rapl" for m in modes):
        return "codecarbon:rapl"
    mode = next((m for m in modes if m), "tdp")
    return f"estimate:codecarbon-{mode.replace('_', '-').replace(' ', '-').lower()}"
