"""Hardware profiles: manufacturing (embodied) carbon, TDP and memory per `--hardware` name.

The figures live in `data/hardware.yaml` with their sources. A profile's `embodied_kg` is the
published figure where one exists (Nguyen et al. for the T4 and RTX 6000 Ada) and otherwise the
ACT-style estimate computed here from the recorded inputs:

    kg = [area_cm2 x (fab_ci x epa + gpa + materials) / yield + memory_gb x dram_g_per_gb
          + ic_packages x package_g] / 1000

(Gupta et al., "ACT", ISCA 2022). Every profile keeps its ACT figure too, so a published number can
be checked against the model that derives the others.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from tasks.errors import GreenlaneError

DATA = Path(__file__).resolve().parent / "data" / "hardware.yaml"
LIST_HINT = "run `greenlane carbon --list` to see the hardware profiles and regions"


@dataclass(frozen=True)
class ActInputs:
    """What ACT needs to estimate one device's manufacturing carbon."""

    die_area_mm2: float
    node: str
    """Process node row of ACT's tables, e.g. `7nm`."""
    memory_type: str
    """ACT DRAM row used to cost the device memory per GB, e.g. `ddr4_10nm`."""
    ic_packages: int
    """Packaged chips on the device (GPU/SoC plus memory), each charged ACT's per-package carbon."""
    fab: str
    """Location whose grid powered the fab, a key of ACT's location table."""


@dataclass(frozen=True)
class HardwareProfile:
    name: str
    display_name: str
    embodied_kg: float
    """Manufacturing carbon C_hw used for accounting, kgCO2e."""
    embodied_source: str
    """`published: <reference>` or `derived: ACT ...`."""
    act_kg: float
    """ACT estimate from `act`, kgCO2e; equals embodied_kg for derived profiles."""
    act: ActInputs
    tdp_w: float
    memory_gb: float
    source: str
    """Where the spec figures (TDP, memory, die area) come from."""
    notes: str = ""

    @property
    def published(self) -> bool:
        return self.embodied_source.startswith("published:")


@lru_cache(maxsize=1)
def _data() -> dict:
    with open(DATA) as f:
        return yaml.safe_load(f)


def act_model() -> dict:
    """ACT's tables as recorded in data/hardware.yaml (with their `source`)."""
    return _data()["act"]


def act_embodied_kg(
    die_area_mm2: float,
    node: str,
    memory_gb: float,
    memory_type: str,
    ic_packages: int,
    fab: str,
    gpa_abatement: int | None = None,
    fab_yield: float | None = None,
) -> float:
    """ACT estimate of manufacturing carbon, kgCO2e (defaults: ACT's 97% abatement, 0.875 yield)."""
    act = act_model()
    gpa_abatement = act["gpa_abatement"] if gpa_abatement is None else gpa_abatement
    fab_yield = act["fab_yield"] if fab_yield is None else fab_yield
    for field, table, key in (
        ("node", act["nodes"], node),
        ("memory_type", act["dram_g_per_gb"], memory_type),
        ("fab", act["fab_ci_g_per_kwh"], fab),
    ):
        if key not in table:
            raise GreenlaneError(f"ACT {field} {key!r} is not in the recorded tables; known: {', '.join(table)}")
    if not 0 < fab_yield <= 1:
        raise GreenlaneError(f"ACT fab_yield must be in (0, 1], got {fab_yield!r}")
    row = act["nodes"][node]
    gpa = {95: row["gpa95_g_per_cm2"], 99: row["gpa99_g_per_cm2"]}.get(gpa_abatement)
    if gpa_abatement == 97:  # ACT's default: the mean of the 95% and 99% tables
        gpa = (row["gpa95_g_per_cm2"] + row["gpa99_g_per_cm2"]) / 2
    if gpa is None:
        raise GreenlaneError(f"ACT gpa_abatement must be 95, 97 or 99, got {gpa_abatement!r}")
    fab_ci = act["fab_ci_g_per_kwh"][fab]
    g_per_cm2 = (fab_ci * row["epa_kwh_per_cm2"] + gpa + row["materials_g_per_cm2"]) / fab_yield
    logic_g = die_area_mm2 / 100.0 * g_per_cm2
    memory_g = memory_gb * act["dram_g_per_gb"][memory_type]
    package_g = ic_packages * act["ic_package_g"]
    return (logic_g + memory_g + package_g) / 1000.0


def _profile(name: str, raw: dict) -> HardwareProfile:
    act = ActInputs(**raw["act_inputs"])
    act_kg = act_embodied_kg(act.die_area_mm2, act.node, raw["memory_gb"], act.memory_type, act.ic_packages, act.fab)
    embodied = raw["embodied_kg"]
    if embodied == "derived":
        embodied = act_kg
    return HardwareProfile(
        name=name,
        display_name=raw["display_name"],
        embodied_kg=float(embodied),
        embodied_source=raw["embodied_source"],
        act_kg=act_kg,
        act=act,
        tdp_w=float(raw["tdp_w"]),
        memory_gb=float(raw["memory_gb"]),
        source=raw["source"],
        notes=raw.get("notes", ""),
    )


@lru_cache(maxsize=1)
def profiles() -> dict[str, HardwareProfile]:
    """All profiles by name, in the order of the data file."""
    return {name: _profile(name, raw) for name, raw in _data()["profiles"].items()}


def get(name: str) -> HardwareProfile:
    """The profile called `name` (case-insensitive); a GreenlaneError naming the valid ones otherwise."""
    table = profiles()
    key = str(name).strip().lower()
    if key in table:
        return table[key]
    close = difflib.get_close_matches(key, table, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise GreenlaneError(f"unknown hardware {name!r}{hint}; known profiles: {', '.join(table)}; {LIST_HINT}")
