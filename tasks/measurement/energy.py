"""The shape every energy meter shares.

A meter is started around a window of work and stopped; `stop()` returns an
`EnergyReading`. `source` says where the joules came from: a hardware counter
(`nvml`, `rapl`, `jetson-ina3221`) or an estimate (`estimate:<how>`). Code that
compares readings must check `measured` rather than assume.

`energy_j` is always the gross figure the meter saw. When the machine's idle
power was measured (meters.measure_idle_w), `idle_power_w` records it and
`net_energy_j` is the part attributable to the work; both are kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
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
    idle_power_w: float | None = None
    """Base-load power of the same meter with nothing running, watts; None when not measured."""

    @property
    def measured(self) -> bool:
        """True when the figure comes from a hardware counter, not a model."""
        return not self.source.startswith("estimate:")

    @property
    def mean_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else float("nan")

    @property
    def net_energy_j(self) -> float:
        """Gross energy minus idle power x duration, joules; equals energy_j when idle is unknown.

        Floored at 0: a window that drew less than the idle figure used nothing beyond base load
        (the difference is idle-measurement noise), and negative joules would poison carbon sums.
        """
        if self.idle_power_w is None:
            return self.energy_j
        return max(0.0, self.energy_j - self.idle_power_w * self.duration_s)

    def with_idle(self, idle_power_w: float) -> "EnergyReading":
        """The same reading with the measured idle power attached."""
        return replace(self, idle_power_w=float(idle_power_w))

    def to_dict(self) -> dict:
        return {**asdict(self), "measured": self.measured, "net_energy_j": self.net_energy_j}


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
        idle_power_w=readings[0].idle_power_w,
    )
