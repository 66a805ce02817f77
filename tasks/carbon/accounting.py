"""Operational + embodied carbon (and cost) of a piece of work, from measured energy and busy time.

    C_op = E[kWh] x PUE x CI[g/kWh]
    C_em = (t / LT) x C_hw          t: seconds the hardware was busy, LT: lifetime, C_hw: manufacturing carbon

A year is 365 x 24 h (8760 h), so a 5-year lifetime is 157,680,000 s. Energy is the meter's figure
for the device (IT energy); PUE scales it to the facility's. Cost, when prices are given:

    usd = E[kWh] x PUE x energy_usd_per_kwh + t[h] x instance_usd_per_hour

(the facility energy is what is billed). Nothing here touches MLflow or a model: records in, records out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from tasks.carbon import hardware as hw
from tasks.carbon import regions
from tasks.errors import GreenlaneError

J_PER_KWH = 3.6e6
S_PER_YEAR = 365 * 24 * 3600


def _check(name: str, value: float, *, positive: bool = False) -> float:
    """A finite number >= 0 (> 0 with positive=True); a GreenlaneError naming the field otherwise."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise GreenlaneError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise GreenlaneError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def _check_pue(pue: float) -> float:
    pue = _check("pue", pue)
    if pue < 1.0:
        raise GreenlaneError(f"pue must be >= 1.0 (facility energy / IT energy; typical 1.1-1.6), got {pue!r}")
    return pue


def operational_g(energy_kwh: float, ci_g_per_kwh: float, pue: float = 1.0) -> float:
    """C_op = E x PUE x CI, grams CO2e."""
    return _check("energy_kwh", energy_kwh) * _check_pue(pue) * _check("ci_g_per_kwh", ci_g_per_kwh)


def embodied_g(seconds: float, embodied_kg: float, lifetime_years: float = 5.0) -> float:
    """C_em = (t / LT) x C_hw, grams CO2e: the busy time's share of the hardware's manufacturing carbon."""
    seconds = _check("seconds", seconds)
    embodied_kg = _check("embodied_kg", embodied_kg)
    lifetime_s = _check("lifetime_years", lifetime_years, positive=True) * S_PER_YEAR
    return seconds / lifetime_s * embodied_kg * 1000.0


def _intensity(region: str | regions.Intensity, hour: int | None, hours_csv: str | Path | None) -> regions.Intensity:
    if isinstance(region, regions.Intensity):
        return region
    if hour is None and hours_csv is None:
        return regions.lookup(region)
    if hour is None or hours_csv is None:
        raise GreenlaneError("hour and hours_csv go together: the hour picks a row of the hourly intensity CSV")
    return regions.at_hour(hours_csv, hour, label=str(region))


@dataclass(frozen=True)
class Footprint:
    """Carbon of one piece of work: `energy_kwh` drawn while the hardware was busy `seconds`."""

    operational_g: float
    embodied_g: float
    total_g: float
    energy_kwh: float
    seconds: float
    region: str
    ci_g_per_kwh: float
    ci_source: str
    hardware: str
    embodied_kg: float
    embodied_source: str
    lifetime_years: float
    pue: float

    def to_json(self) -> dict:
        """The `greenlane carbon --json` object (exactly the keys the issue names)."""
        keys = (
            "operational_g",
            "embodied_g",
            "total_g",
            "region",
            "ci_g_per_kwh",
            "hardware",
            "embodied_kg",
            "lifetime_years",
        )
        return {k: getattr(self, k) for k in keys}


def footprint(
    energy_kwh: float,
    seconds: float,
    region: str | regions.Intensity,
    hardware: str,
    pue: float = 1.0,
    lifetime_years: float = 5.0,
    hour: int | None = None,
    hours_csv: str | Path | None = None,
) -> Footprint:
    """Operational and embodied grams for `energy_kwh` and `seconds` of busy time on `hardware` in `region`.

    With `hour` and `hours_csv`, the intensity is that CSV's mean at that hour of day (labelled REGION@HH).
    """
    profile = hw.get(hardware)
    ci = _intensity(region, hour, hours_csv)
    op = operational_g(energy_kwh, ci.gco2e_per_kwh, pue)
    em = embodied_g(seconds, profile.embodied_kg, lifetime_years)
    return Footprint(
        operational_g=op,
        embodied_g=em,
        total_g=op + em,
        energy_kwh=float(energy_kwh),
        seconds=float(seconds),
        region=ci.region,
        ci_g_per_kwh=ci.gco2e_per_kwh,
        ci_source=ci.source,
        hardware=profile.name,
        embodied_kg=profile.embodied_kg,
        embodied_source=profile.embodied_source,
        lifetime_years=float(lifetime_years),
        pue=float(pue),
    )


@dataclass(frozen=True)
class CarbonBreakdown:
    """Carbon and cost per 1,000 generated tokens of one variant on one target, in one region."""

    gco2e_operational_per_1k_tokens: float
    gco2e_embodied_per_1k_tokens: float
    gco2e_per_1k_tokens: float
    energy_j_per_1k_tokens: float
    busy_s_per_1k_tokens: float
    usd_per_1k_tokens: float | None
    """None when neither an energy nor an instance price was given."""
    energy_source: str
    """Where the joules came from (`nvml`, `rapl`, ... or `estimate:<how>`), carried from the measurement."""
    ci_g_per_kwh: float
    ci_source: str
    region: str
    hardware: str
    embodied_kg: float
    embodied_source: str
    lifetime_years: float
    pue: float

    @property
    def measured(self) -> bool:
        return not self.energy_source.startswith("estimate:")

    @property
    def embodied_share(self) -> float:
        return self.gco2e_embodied_per_1k_tokens / self.gco2e_per_1k_tokens if self.gco2e_per_1k_tokens else 0.0

    def to_metrics(self) -> dict[str, float]:
        """Numeric MLflow metrics (the issue's names); usd_per_1k_tokens only when a price was given."""
        names = (
            "gco2e_operational_per_1k_tokens",
            "gco2e_embodied_per_1k_tokens",
            "gco2e_per_1k_tokens",
            "energy_j_per_1k_tokens",
        )
        metrics = {n: float(getattr(self, n)) for n in names}
        if self.usd_per_1k_tokens is not None:
            metrics["usd_per_1k_tokens"] = float(self.usd_per_1k_tokens)
        return metrics

    def to_dict(self) -> dict:
        return {**asdict(self), "measured": self.measured, "embodied_share": self.embodied_share}


def cost_usd(
    energy_kwh: float,
    seconds: float,
    pue: float = 1.0,
    energy_usd_per_kwh: float | None = None,
    instance_usd_per_hour: float | None = None,
) -> float | None:
    """Energy price x facility energy + instance price x busy hours; None when no price is given."""
    if energy_usd_per_kwh is None and instance_usd_per_hour is None:
        return None
    usd = 0.0
    if energy_usd_per_kwh is not None:
        usd += _check("energy_kwh", energy_kwh) * _check_pue(pue) * _check("energy_usd_per_kwh", energy_usd_per_kwh)
    if instance_usd_per_hour is not None:
        usd += _check("seconds", seconds) / 3600.0 * _check("instance_usd_per_hour", instance_usd_per_hour)
    return usd


def per_1k_tokens(
    energy_j_per_1k_tokens: float,
    busy_s_per_1k_tokens: float,
    energy_source: str,
    region: str | regions.Intensity,
    hardware: str,
    pue: float = 1.0,
    lifetime_years: float = 5.0,
    hour: int | None = None,
    hours_csv: str | Path | None = None,
    energy_usd_per_kwh: float | None = None,
    instance_usd_per_hour: float | None = None,
) -> CarbonBreakdown:
    """Carbon (and cost) per 1k tokens from a benchmark's energy and busy time per 1k tokens."""
    if not isinstance(energy_source, str) or not energy_source.strip():
        raise GreenlaneError(
            f"energy_source must name where the joules came from (e.g. `nvml`, `estimate:...`), got {energy_source!r}"
        )
    energy_kwh = _check("energy_j_per_1k_tokens", energy_j_per_1k_tokens) / J_PER_KWH
    seconds = _check("busy_s_per_1k_tokens", busy_s_per_1k_tokens)
    fp = footprint(energy_kwh, seconds, region, hardware, pue, lifetime_years, hour, hours_csv)
    return CarbonBreakdown(
        gco2e_operational_per_1k_tokens=fp.operational_g,
        gco2e_embodied_per_1k_tokens=fp.embodied_g,
        gco2e_per_1k_tokens=fp.total_g,
        energy_j_per_1k_tokens=float(energy_j_per_1k_tokens),
        busy_s_per_1k_tokens=seconds,
        usd_per_1k_tokens=cost_usd(energy_kwh, seconds, pue, energy_usd_per_kwh, instance_usd_per_hour),
        energy_source=energy_source,
        ci_g_per_kwh=fp.ci_g_per_kwh,
        ci_source=fp.ci_source,
        region=fp.region,
        hardware=fp.hardware,
        embodied_kg=fp.embodied_kg,
        embodied_source=fp.embodied_source,
        lifetime_years=fp.lifetime_years,
        pue=fp.pue,
    )
