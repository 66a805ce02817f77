"""The shape every energy meter shares.

A meter is started around a window of work and stopped; `stop()` returns an
`EnergyReading`. `source` says where the joules came from: a hardware counter
(`nvml`, `rapl`, `jetson-ina3221`) or an estimate (`estimate:<how>`). Code that
compares readings must check `measured` rather than assume.

`energy_j` is the gross figure the meter saw, idle draw included: the machine
draws it for as long as the work holds it (README, "Energy is gross").
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


def sum_readings(readings: list[EnergyReading]) -> EnergyReading:
    """One reading for several windows of the same meter: joules and seconds add up.

    Detail keys ending in `_j` or `_s` (extensive quantities, by the units-in-names rule) are
    summed; other details are the first window's. `windows` and `energy_j_per_window` say how
    the total was made.
    """
    if not readings:
        raise ValueError("sum_readings needs at least one reading")
    sources = {r.source for r in readings}
    if len(sources) > 1:
        raise ValueError(f"cannot add readings from different sources: {sorted(sources)}")
    details = dict(readings[0].details)
    for key, value in readings[0].details.items():
        if key.endswith(("_j", "_s")) and isinstance(value, (int, float)):
            details[key] = sum(float(r.details.get(key, 0.0)) for r in readings)
    details.update(windows=len(readings), energy_j_per_window=[r.energy_j for r in readings])
    return EnergyReading(
        energy_j=sum(r.energy_j for r in readings),
        duration_s=sum(r.duration_s for r in readings),
        source=readings[0].source,
        details=details,
    )
