"""Grid carbon intensity, gCO2e per kWh, by region and (optionally) by hour of day.

Three sources, checked in this order:
- named grids in `data/regions.yaml` (QC, CISO, PACE from Nguyen et al., HotCarbon 2024);
- countries by ISO 3166-1 alpha-3 code from codecarbon's bundled energy-mix data
  (`codecarbon/data/private_infra/global_energy_mix.json`, field `carbon_intensity`, one year per
  country, the year carried into the source), read from the installed package without importing it;
- a user CSV of hourly intensities (`timestamp,gco2e_per_kwh`) for time-of-day what-ifs.
"""

from __future__ import annotations

import csv
import difflib
import importlib.metadata
import importlib.util
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import yaml

from tasks.errors import GreenlaneError

DATA = Path(__file__).resolve().parent / "data" / "regions.yaml"
CODECARBON_MIX = Path("data") / "private_infra" / "global_energy_mix.json"
LIST_HINT = "run `greenlane carbon --list` to see the regions (grids and country ISO-3 codes)"


@dataclass(frozen=True)
class Intensity:
    region: str
    gco2e_per_kwh: float
    name: str
    source: str


@lru_cache(maxsize=1)
def grids() -> dict[str, Intensity]:
    with open(DATA) as f:
        raw = yaml.safe_load(f)["grids"]
    return {
        code: Intensity(code, float(g["gco2e_per_kwh"]), g["name"], " ".join(g["source"].split()))
        for code, g in raw.items()
    }


def codecarbon_mix_path() -> Path:
    """Where the installed codecarbon keeps its per-country energy mix (found without importing it)."""
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise GreenlaneError("codecarbon is not installed; country regions need its bundled energy-mix data")
    return Path(next(iter(spec.submodule_search_locations))) / CODECARBON_MIX


@lru_cache(maxsize=1)
def countries() -> dict[str, Intensity]:
    path = codecarbon_mix_path()
    version = importlib.metadata.version("codecarbon")
    with open(path) as f:
        mix = json.load(f)
    out = {}
    for code, row in mix.items():
        if row.get("carbon_intensity") is None:
            continue
        source = (
            f"codecarbon {version} {path.parent.name}/{path.name}, carbon_intensity for {row.get('year', 'year n/a')}"
        )
        out[code.upper()] = Intensity(
            code.upper(), float(row["carbon_intensity"]), row.get("country_name", code), source
        )
    return out


def all_regions() -> dict[str, Intensity]:
    """Grids first, then countries; a grid code shadows a country code of the same spelling."""
    return {**countries(), **grids()}


def lookup(region: str) -> Intensity:
    """Intensity of a grid code or country ISO-3 code (case-insensitive)."""
    key = str(region).strip().upper()
    table = all_regions()
    if key in table:
        return table[key]
    close = difflib.get_close_matches(key, table, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise GreenlaneError(f"unknown region {region!r}{hint}; grids: {', '.join(grids())}; {LIST_HINT}")


@dataclass(frozen=True)
class HourlyIntensity:
    """Mean intensity for one hour of the day over all days of an hourly CSV."""

    hour: int
    """Hour of day 0-23, in the CSV's own timestamps' clock."""
    gco2e_per_kwh: float
    samples: int


def read_hourly_csv(path: str | Path) -> list[tuple[datetime, float]]:
    """Rows (timestamp, gco2e_per_kwh) of a CSV with those two columns (ISO 8601 timestamps)."""
    path = Path(path)
    if not path.is_file():
        raise GreenlaneError(f"hourly intensity CSV {str(path)!r} does not exist")
    try:  # utf-8 and csv.Error: a binary file fails with one line, not a traceback
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"timestamp", "gco2e_per_kwh"} - set(reader.fieldnames or [])
            if missing:
                raise GreenlaneError(
                    f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                    f"expected a header `timestamp,gco2e_per_kwh`, got {reader.fieldnames}"
                )
            rows = []
            for line, rec in enumerate(reader, start=2):
                try:
                    ts = datetime.fromisoformat(rec["timestamp"].strip())
                    ci = float(rec["gco2e_per_kwh"])
                except (ValueError, AttributeError, TypeError) as err:  # TypeError: a short row's missing cell
                    raise GreenlaneError(f"{path}:{line}: cannot read {rec!r}: {err}") from None
                if not 0 <= ci < float("inf"):  # NaN fails the comparison too
                    raise GreenlaneError(f"{path}:{line}: gco2e_per_kwh must be >= 0, got {ci} (and finite)")
                rows.append((ts, ci))
    except (UnicodeDecodeError, csv.Error) as err:
        raise GreenlaneError(f"{path} is not a UTF-8 text CSV ({type(err).__name__}: {err})") from None
    if not rows:
        raise GreenlaneError(f"{path}: no rows after the header")
    return rows


def hourly_profile(path: str | Path) -> dict[int, HourlyIntensity]:
    """Mean intensity per hour of day (only hours present in the CSV), keyed by hour."""
    by_hour: dict[int, list[float]] = defaultdict(list)
    for ts, ci in read_hourly_csv(path):
        by_hour[ts.hour].append(ci)
    return {h: HourlyIntensity(h, sum(v) / len(v), len(v)) for h, v in sorted(by_hour.items())}


def at_hour(path: str | Path, hour: int, label: str | None = None) -> Intensity:
    """The CSV's mean intensity at `hour`, as an Intensity labelled `LABEL@HH` (LABEL: the file stem)."""
    if not (isinstance(hour, int) and 0 <= hour <= 23):
        raise GreenlaneError(f"hour must be an integer 0-23, got {hour!r}")
    profile = hourly_profile(path)
    if hour not in profile:
        raise GreenlaneError(
            f"{path}: no rows for hour {hour:02d}; hours present: {', '.join(f'{h:02d}' for h in profile)}"
        )
    return hourly_intensities(path, label)[hour]


def hourly_intensities(path: str | Path, label: str | None = None) -> dict[int, Intensity]:
    """One Intensity per hour of day present in the CSV, labelled `LABEL@HH`."""
    label = label or Path(path).stem
    return {
        h: Intensity(
            f"{label}@{h:02d}",
            p.gco2e_per_kwh,
            f"{label} at {h:02d}:00",
            f"hourly CSV {Path(path).name}: mean of {p.samples} sample(s) at {h:02d}:00",
        )
        for h, p in hourly_profile(path).items()
    }
