"""Read one pipeline run back from MLflow into the plain records the report and the router use.

The parent run's decision.json already holds every variant@target benchmark record (`results`) and the
per-target decisions and what-if rows, so the records here are those, plus what only the child runs
have: the fitted `energy_model.json` and the measured `energy_grid.csv` (present when the run set
`benchmark.energy_grid`), downloaded next to the report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks import energy_model
from tasks.config import safe_name
from tasks.report.plots import verdicts

ARTIFACTS = ("energy_model.json", "energy_grid.csv")


def collect(tracking_uri: str, experiment: str, run_id: str | None, work_dir: Path) -> dict:
    """{run, decision, records}: the pipeline run (`run_id`, or the latest with a decision) and its variants."""
    from tasks.tracking import queries

    run = queries.pipeline_run(tracking_uri, experiment, run_id)
    decision = run.pop("decision")
    passed, champions = verdicts(decision)
    records = []
    for r in decision.get("results", []):
        name = f"{r['variant']}@{r['target']}"
        found = {}
        if r.get("run_id"):
            found = queries.run_artifacts(tracking_uri, r["run_id"], ARTIFACTS, Path(work_dir) / safe_name(name))
        records.append({
            **r,
            "name": name,
            "passed": passed.get((r["variant"], r["target"])),
            "champion": champions.get(r["target"]) == r["variant"],
            "energy_model_path": str(found["energy_model.json"]) if "energy_model.json" in found else None,
            "energy_grid_path": str(found["energy_grid.csv"]) if "energy_grid.csv" in found else None,
        })
    return {"run": run, "decision": decision, "records": records}


def candidate_records(records: list[dict], include_failing: bool = False) -> list[dict]:
    """The router's view of the variants: those with an energy model (and passing the gates, by default).

    A variant that failed a gate is not servable, so it is no routing candidate unless asked for.
    """
    out = []
    for r in records:
        if not r.get("energy_model_path") or (r.get("passed") is False and not include_failing):
            continue
        carbon = r.get("carbon") or {}
        out.append({
            "name": r["name"], "run_id": r.get("run_id"), "target": r["target"], "accuracy": r.get("accuracy"),
            # the grid's meter is what the energy model was fitted on
            "energy_source": r.get("energy_model_source") or r.get("energy_source") or "unknown",
            "energy_model_path": r["energy_model_path"],
            "region": carbon.get("region", "CISO"), "hardware": carbon.get("hardware", "cpu"),
            "pue": carbon.get("pue", 1.0), "lifetime_years": carbon.get("lifetime_years", 5.0),
        })
    return out


def energy_fits(records: list[dict]) -> list[dict]:
    """Measured grid cells next to the fitted model's predictions, per variant@target that has both."""
    fits = []
    for r in records:
        if not (r.get("energy_model_path") and r.get("energy_grid_path")):
            continue
        models = energy_model.load_models(r["energy_model_path"])
        model, runtime = models["energy_j"], models.get("runtime_s")
        tin, tout, y = (np.concatenate(cols) for cols in zip(*energy_model.read_grid(r["energy_grid_path"]).values()))
        fits.append({
            "name": r["name"], "form": model.form, "weighting": model.weighting, "r2": model.r2,
            "cv_mdape": model.cv_mdape, "n_points": model.n_points, "terms": model.terms,
            "runtime_cv_mdape": runtime.cv_mdape if runtime else None,
            "energy_source": r.get("energy_model_source") or r.get("energy_source") or "unknown",
            "measured_j": y.tolist(), "predicted_j": model.predict(tin, tout).tolist(),
        })
    return fits
