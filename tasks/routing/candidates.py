"""Routing candidates (a variant served on a target) and their per-query cost matrices.

A candidate is what a router can send a query to: its fitted E(tin, tout) and runtime(tin, tout) models
(tasks.energy_model, the `energy_model.json` a benchmark with `benchmark.energy_grid` logs), its task
accuracy, and where it runs (region, hardware, PUE, lifetime) so that energy can be turned into carbon
with the same arithmetic as the rest of greenlane (tasks.carbon.accounting).

Candidates come from a JSON file (`load_json`) or from the child runs of a pipeline run in MLflow
(`from_run_records`, fed by tasks.tracking.queries.run_records).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.carbon import accounting
from tasks.energy_model import EnergyModel, load_models
from tasks.errors import GreenlaneError


@dataclass(frozen=True)
class Candidate:
    name: str
    """Unique label, `<variant>@<target>` for pipeline runs."""
    accuracy: float
    """Task accuracy in [0, 1]; every query routed here is credited with it."""
    energy: EnergyModel
    """Joules per request from (tin, tout)."""
    runtime: EnergyModel
    """Seconds per request from (tin, tout): the busy time that embodied carbon is charged for."""
    energy_source: str
    """Where the joules behind the energy model came from (`rapl`, `nvml`, `estimate:...`)."""
    target: str = ""
    region: str = "CISO"
    hardware: str = "cpu"
    pue: float = 1.0
    lifetime_years: float = 5.0
    min_share: float = 0.0
    """Least fraction of the queries this candidate must serve (e.g. a replica that is up anyway)."""
    max_share: float = 1.0
    """Most fraction of the queries this candidate can serve (its capacity)."""

    @property
    def measured(self) -> bool:
        return not self.energy_source.startswith("estimate:")

    def carbon_rates(self) -> tuple[float, float]:
        """(operational gCO2e per joule, embodied gCO2e per busy second) at this candidate's place."""
        fp = accounting.footprint(1.0 / accounting.J_PER_KWH, 1.0, self.region, self.hardware, self.pue, self.lifetime_years)
        return fp.operational_g, fp.embodied_g


def _number(raw: dict, key: str, where: str, default=None) -> float:
    value = raw.get(key, default)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise GreenlaneError(f"{where}: `{key}` must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise GreenlaneError(f"{where}: `{key}` must be finite, got {value!r}")
    return value


def _model(models: dict[str, EnergyModel], key: str, path, where: str) -> EnergyModel:
    if key not in models:
        raise GreenlaneError(f"{where}: {path} has no model {key!r} (it has: {', '.join(models) or 'none'})")
    return models[key]


def from_dict(raw: dict, base_dir: Path, where: str) -> Candidate:
    """One candidate from a JSON object; `energy_model` paths are relative to `base_dir`."""
    if not isinstance(raw, dict):
        raise GreenlaneError(f"{where}: each candidate must be a JSON object")
    missing = [k for k in ("name", "accuracy", "energy_model", "energy_source") if raw.get(k) in (None, "")]
    if missing:
        raise GreenlaneError(
            f"{where}: missing {', '.join(missing)}; a candidate needs name, accuracy, energy_model (path to an "
            "energy_model.json) and energy_source"
        )
    energy_path = base_dir / str(raw["energy_model"])
    runtime_path = base_dir / str(raw.get("runtime_model", raw["energy_model"]))
    energy_models, runtime_models = load_models(energy_path), load_models(runtime_path)
    cand = Candidate(
        name=str(raw["name"]),
        accuracy=_number(raw, "accuracy", where),
        energy=_model(energy_models, str(raw.get("energy_key", "energy_j")), energy_path, where),
        runtime=_model(runtime_models, str(raw.get("runtime_key", "runtime_s")), runtime_path, where),
        energy_source=str(raw["energy_source"]),
        target=str(raw.get("target", "")),
        region=str(raw.get("region", "CISO")),
        hardware=str(raw.get("hardware", "cpu")),
        pue=_number(raw, "pue", where, 1.0),
        lifetime_years=_number(raw, "lifetime_years", where, 5.0),
        min_share=_number(raw, "min_share", where, 0.0),
        max_share=_number(raw, "max_share", where, 1.0),
    )
    return check(cand, where)


def check(cand: Candidate, where: str) -> Candidate:
    if not 0.0 <= cand.accuracy <= 1.0:
        raise GreenlaneError(f"{where}: accuracy must be in [0, 1], got {cand.accuracy}")
    if not 0.0 <= cand.min_share <= cand.max_share <= 1.0:
        raise GreenlaneError(
            f"{where}: shares must satisfy 0 <= min_share <= max_share <= 1, got {cand.min_share}, {cand.max_share}"
        )
    if cand.energy.target != "energy_j" or cand.runtime.target != "runtime_s":
        raise GreenlaneError(
            f"{where}: energy model must fit energy_j and runtime model runtime_s, got "
            f"{cand.energy.target} and {cand.runtime.target}"
        )
    cand.carbon_rates()  # an unknown region or hardware profile fails here, naming it
    return cand


def load_json(path: str | Path) -> list[Candidate]:
    """Candidates from a JSON list of objects (see README: `greenlane route --candidates`)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise GreenlaneError(f"cannot read candidates file {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:  # a binary file
        raise GreenlaneError(f"{path} is not a UTF-8 JSON file ({err})") from None
    except json.JSONDecodeError as err:
        raise GreenlaneError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(raw, list):
        raise GreenlaneError(f"{path}: expected a JSON list of candidate objects")
    return unique([from_dict(r, path.parent, f"{path}[{i}]") for i, r in enumerate(raw)], str(path))


def from_run_records(records: list[dict]) -> list[Candidate]:
    """Candidates from pipeline child-run records that carry an energy model (see tracking.queries.run_records).

    Each record needs `name`, `accuracy`, `energy_source`, `energy_model_path` and the carbon fields of
    its benchmark (`region`, `hardware`, `pue`, `lifetime_years`); records without an energy model are
    skipped, since the router cannot price a query on them.
    """
    out = []
    for rec in records:
        path = rec.get("energy_model_path")
        if not path or rec.get("accuracy") is None:
            continue
        models = load_models(path)
        where = f"run {rec.get('run_id', '?')} ({rec['name']})"
        out.append(check(Candidate(
            name=rec["name"], accuracy=float(rec["accuracy"]), energy=_model(models, "energy_j", path, where),
            runtime=_model(models, "runtime_s", path, where), energy_source=rec["energy_source"],
            target=rec.get("target", ""), region=rec["region"], hardware=rec["hardware"],
            pue=float(rec.get("pue", 1.0)), lifetime_years=float(rec.get("lifetime_years", 5.0)),
        ), where))
    return out


def unique(cands: list[Candidate], where: str) -> list[Candidate]:
    if not cands:
        raise GreenlaneError(f"{where}: no candidates to route to")
    names = [c.name for c in cands]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise GreenlaneError(f"{where}: candidate names must be unique; repeated: {', '.join(dup)}")
    return cands


def cost_matrices(cands: list[Candidate], tin, tout) -> dict[str, np.ndarray]:
    """Per query x candidate: `energy_j`, `runtime_s`, `gco2e` (operational + embodied), and `accuracy` (K,)."""
    energy = np.column_stack([c.energy.predict(tin, tout) for c in cands])
    runtime = np.column_stack([c.runtime.predict(tin, tout) for c in cands])
    rates = np.array([c.carbon_rates() for c in cands])
    gco2e = energy * rates[:, 0] + runtime * rates[:, 1]
    return {"energy_j": energy, "runtime_s": runtime, "gco2e": gco2e,
            "accuracy": np.array([c.accuracy for c in cands], dtype=float)}


def extrapolated(cands: list[Candidate], tin, tout) -> dict[str, float]:
    """Fraction of queries outside each candidate's fitted (tin, tout) range: predictions there are extrapolation."""
    tin, tout = np.asarray(tin), np.asarray(tout)
    out = {}
    for c in cands:
        (ilo, ihi), (olo, ohi) = c.energy.tin_range, c.energy.tout_range
        outside = (tin < ilo) | (tin > ihi) | (tout < olo) | (tout > ohi)
        out[c.name] = float(outside.mean())
    return out
