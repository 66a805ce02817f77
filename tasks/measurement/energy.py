"""The shape every energy meter shares.

A meter is started around a window of work and stopped; `stop()` returns an
`EnergyReading`. `source` says where the joules came from: a hardware counter
(`nvml`, `rapl`, `jetson-ina3221`) or an estimate (`estimate:<how>`). Code that
compares readings must check `measured` rather than assume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class EnergyReading:
    energy_j: float
    """Energy attributed to the window, joules."""
    duration_s: float
    """Wall-clock length of the window, seconds."""
    source: str
    """`nvml`, `rapl`, `jetson-ina3221`, or `estimate:<how>`."""
    details: dict = field(default_factory=dict)
    """Meter-specific breakdown (e.g. cpu_j, ram_j), units in the key names."""

    @property
    def measured(self) -> bool:
        """True when the figure comes from a hardware counter, not a model."""
        return not self.source.startswith("estimate:")

    @property
    def mean_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else float("nan")

    def to_dict(self) -> dict:
        return {**asdict(self), "measured": self.measured}


class EnergyMeter(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> EnergyReading: ...
