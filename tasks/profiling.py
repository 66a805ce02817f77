"""greenlane_energy_profile's steps: per target, sweep the (tin, tout) grid on the current champion, fit, log.

The champion of each target (registry alias `champion-<target>`) is fetched
from its benchmark run, loaded on a worker of the target's queue, and run once
per grid cell with that machine's energy meter (tasks.measurement.sweeps
.energy_grid). E(tin, tout) and runtime(tin, tout) are fitted by
tasks.energy_model (form chosen by cross-validated MdAPE) and logged as a child
run `<variant>@<target> energy-profile` of the profile's parent run, with the
grid CSV and the fitted models; the model version is tagged with that run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("greenlane")

DEFAULT_GRID = {"tin": [16, 64, 256, 512], "tout": [8, 32, 128], "repeats": 1}


def prepare_profile(params: dict, dag_run_id: str) -> dict:
    """Validate params and the grid, run `pipeline.prepare`, name the parent run; the ctx carries the grid."""
    from tasks.config import EnergyGridConfig, load_config, params_config_file
    from tasks.errors import GreenlaneError
    from tasks.pipeline import prepare
    from tasks.tracking import runs

    config_file = params_config_file(params, dag_run_id)
    configured = load_config(config_file).benchmark.energy_grid
    grid = configured.model_dump() if configured.enabled else dict(DEFAULT_GRID)
    grid.update({k: params[k] for k in ("tin", "tout", "repeats") if params.get(k)})
    try:  # before prepare: a bad grid fails without leaving a parent run behind
        grid = EnergyGridConfig(**grid).model_dump()
    except ValueError as err:
        raise GreenlaneError(f"energy grid: {err}") from None
    ctx = prepare(config_file, None, dag_run_id)
    runs.log_record(ctx["tracking_uri"], ctx["parent_run_id"], metrics={},
                    params={"grid_tin": grid["tin"], "grid_tout": grid["tout"], "grid_repeats": grid["repeats"]},
                    tags={"greenlane.dag": "greenlane_energy_profile"})
    runs.rename_run(ctx["tracking_uri"], ctx["parent_run_id"], f"energy-profile {dag_run_id}")
    return {**ctx, "grid": grid}


def champion_jobs(ctx: dict) -> list[dict]:
    """One job per target that has a champion; the others are logged and left out."""
    from tasks.config import load_ctx_config
    from tasks.tracking.queries import champion_report

    jobs = []
    for target in load_ctx_config(ctx).targets:
        report = champion_report(ctx["tracking_uri"], ctx["registered_model"], target)
        if report is None:
            log.warning("target %s has no champion in %s yet: nothing to profile", target, ctx["registered_model"])
            continue
        jobs.append({"target": target, "variant": report["variant"], "version": str(report["version"]),
                     "run_id": report["run_id"]})
    return jobs


def profile(ctx: dict, job: dict) -> str:
    """Sweep the grid on this worker for one champion, log the fitted models; returns the profile file."""
    from tasks import runtimes
    from tasks.carbon.detect import worker_report
    from tasks.config import EnergyGridConfig, load_ctx_config, safe_name
    from tasks.measurement import sweeps
    from tasks.measurement.benchmark import make_target_meter
    from tasks.tracking import profiles

    cfg = load_ctx_config(ctx)
    tcfg = cfg.targets[job["target"]]
    label = f"{job['variant']}@{job['target']}"
    out_dir = Path(ctx["run_dir"]) / "profiles" / safe_name(label)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_dir = profiles.download_variant(ctx["tracking_uri"], job["run_id"], out_dir / "champion")
    grid = EnergyGridConfig(**ctx["grid"])
    runtime = runtimes.load(model_dir, tcfg.device, cfg.benchmark.threads)  # the champion's own runtime
    log.info("profiling %s (version %s) in %s on %s: %d x %d grid", label, job["version"], runtime.name,
             tcfg.device, len(grid.tin), len(grid.tout))
    try:
        fit = sweeps.energy_grid(runtime, grid, make_target_meter(tcfg, out_dir), out_dir, label)
    finally:
        runtime.close()
    machine = worker_report()
    record = {**job, **fit, "hardware": machine, "grid": ctx["grid"]}
    metrics = {k: v for k, v in fit.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for target, summary in fit["energy_model"].items():  # fit quality, and the coefficients in the target's unit
        metrics.update({f"{target}_{k}": summary[k] for k in ("r2", "cv_mdape", "min_prediction")})
        metrics.update({f"{target}_coef_{safe_name(term)}": c for term, c in zip(summary["terms"], summary["coefficients"])})
    record["run_id_profile"] = profiles.log_profile(
        ctx["tracking_uri"], ctx["experiment_id"], ctx["parent_run_id"], key=f"{ctx['dag_run_id']}/{label}/profile",
        run_name=f"{label} energy-profile", metrics=metrics,
        params={"model_version": job["version"], "grid_tin": grid.tin, "grid_tout": grid.tout},
        tags={"variant": job["variant"], "target": job["target"], "model_version": job["version"],
              "energy_source": fit["energy_model_source"], "worker": machine["worker"],
              "worker_hostname": machine["hostname"], "queue": tcfg.queue,
              "energy_form": fit["energy_model"]["energy_j"]["form"]},
        files=[out_dir / "energy_grid.csv", out_dir / "energy_model.json"],
        model=(ctx["registered_model"], job["version"]),
    )
    path = out_dir / "profile.json"
    path.write_text(json.dumps(record, indent=2, default=str))
    log.info("%s: energy model %s, CV MdAPE %.1f%%", label, fit["energy_model"]["energy_j"]["form"],
             100 * fit["energy_model_cv_mdape"])
    return str(path)


def finish(ctx: dict) -> dict:
    """Summarize the profiles on the parent run and close it; raise if a served target's profile is missing."""
    from tasks.errors import GreenlaneError
    from tasks.orchestration import unserved_targets
    from tasks.tracking import runs

    done = [json.loads(p.read_text()) for p in sorted((Path(ctx["run_dir"]) / "profiles").glob("*/profile.json"))]
    summary = {r["target"]: {"variant": r["variant"], "version": r["version"], "run_id": r["run_id_profile"],
                             "energy_model": r["energy_model"]} for r in done}
    unserved = unserved_targets(ctx)
    runs.log_json(ctx["tracking_uri"], ctx["parent_run_id"], {"profiles": summary, "unserved": unserved}, "profiles.json")
    wanted = {j["target"] for j in champion_jobs(ctx)} - set(unserved)
    missing = sorted(wanted - set(summary))
    runs.finish(ctx["tracking_uri"], ctx["parent_run_id"], status="FAILED" if missing else "FINISHED")
    if missing:
        raise GreenlaneError(f"no energy profile for target(s) {', '.join(missing)}: their profile tasks failed")
    return summary
