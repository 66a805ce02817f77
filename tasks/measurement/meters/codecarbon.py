"""Energy from a codecarbon tracker.

codecarbon reads RAPL where the kernel exposes it; elsewhere it models CPU
power from TDP x load and RAM power from its size. The reading's `source` says
which: `codecarbon:rapl` only when codecarbon really read counters, otherwise
`estimate:codecarbon-<mode>`. Its emissions.csv is kept in `output_dir`.
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
        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._tracker = OfflineEmissionsTracker(
            country_iso_code=self.country_iso_code,
            output_dir=str(self.output_dir),
            save_to_file=True,
            log_level="error",
            measure_power_secs=self.measure_power_secs,
            tracking_mode="process",
            allow_multiple_runs=True,
        )
        self._t0 = time.perf_counter()
        self._tracker.start()

    def stop(self) -> EnergyReading:
        if self._tracker is None:
            raise RuntimeError("CodecarbonMeter.stop() called before start()")
        self._tracker.stop()
        data = self._tracker.final_emissions_data
        # codecarbon integrates power until stop() returns; its own duration matches the joules.
        duration_s = float(data.duration) or (time.perf_counter() - self._t0)
        source = _source_label(self._tracker)
        self._tracker = None
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
                "emissions_csv": str(self.output_dir / "emissions.csv"),
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
