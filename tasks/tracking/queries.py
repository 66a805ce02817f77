"""Where a config's runs and models live, and reading back what the pipeline logged there: the champion of a
target and its baseline, pipeline runs and their artifacts."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mlflow.exceptions import MlflowException

from tasks.tracking.registry import alias_for
from tasks.tracking.runs import PARENT_TAG, client


def champion_report(tracking_uri: str, name: str, target: str) -> dict | None:
    """The version behind `champion-<target>`, its run's metrics, and the same DAG run's baseline metrics."""
    c = client(tracking_uri)
    try:
        version = c.get_model_version_by_alias(name, alias_for(target))
    except MlflowException:
        return None
    run = c.get_run(version.run_id)
    parent = run.data.tags.get(PARENT_TAG)
    baseline = c.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent}' and tags.variant = 'baseline' and tags.target = '{target}'",
        max_results=1,
    )
    return {
        "target": target,
        "registered_model": name,
        "version": version.version,
        "alias": alias_for(target),
        "variant": run.data.tags.get("variant"),
        "run_id": version.run_id,
        "energy_source": run.data.tags.get("energy_source"),
        "metrics": run.data.metrics,
        "baseline_metrics": baseline[0].data.metrics if baseline else {},
    }


def registry_location(cfg) -> tuple[str, str]:
    """(tracking URI, registered model name) a config's variants are registered under: `mlflow.registered_model`,
    default the base model's name. The one place that names it: the pipeline writes there, the commands read."""
    from tasks.models import model_name

    return cfg.tracking_uri(), cfg.mlflow.registered_model or model_name(cfg.base_model)


def experiment_location(cfg) -> tuple[str, str]:
    """(tracking URI, experiment name) a config's pipeline runs are logged to: `mlflow.experiment`, default
    `greenlane-<base model's name>`."""
    from tasks.models import model_name

    return cfg.tracking_uri(), cfg.mlflow.experiment or f"greenlane-{model_name(cfg.base_model)}"


def pipeline_run(tracking_uri: str, experiment: str, run_id: str | None = None) -> dict:
    """A pipeline (parent) run with its decision record: `run_id`, or the latest parent that has one.

    Returns {run_id, run_name, experiment_id, start_time, status, decision}. A run without decision.json
    (its promote step never ran) cannot be reported on, so it is skipped when picking the latest.
    """
    from tasks.errors import GreenlaneError

    c = client(tracking_uri)
    if run_id is not None:
        try:
            runs = [c.get_run(run_id)]
        except MlflowException:
            raise GreenlaneError(f"no run {run_id!r} at {tracking_uri}") from None
        if PARENT_TAG in runs[0].data.tags:
            raise GreenlaneError(f"run {run_id} is a variant run ({runs[0].info.run_name}); pass its parent "
                                 f"{runs[0].data.tags[PARENT_TAG]} (the pipeline run)")
    else:
        exp = c.get_experiment_by_name(experiment)
        if exp is None:
            raise GreenlaneError(f"no experiment {experiment!r} at {tracking_uri}; run `greenlane run` first")
        runs = [r for r in c.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])
                if PARENT_TAG not in r.data.tags]
    for run in runs:
        decision = _json_artifact(c, run.info.run_id, "decision.json")
        if decision is not None:
            return {"run_id": run.info.run_id, "run_name": run.info.run_name, "experiment_id": run.info.experiment_id,
                    "start_time": run.info.start_time, "status": run.info.status, "decision": decision}
    where = f"run {run_id}" if run_id else f"experiment {experiment!r}"
    raise GreenlaneError(f"{where} at {tracking_uri} has no decision.json (no pipeline run finished its promote step)")


def run_artifacts(tracking_uri: str, run_id: str, names: tuple[str, ...], dst: Path) -> dict[str, Path]:
    """Download those of `names` (top-level artifact files) that the run has into `dst`; {name: local path}."""
    _quiet()
    c = client(tracking_uri)
    present = {a.path for a in c.list_artifacts(run_id)}
    dst.mkdir(parents=True, exist_ok=True)
    return {name: Path(c.download_artifacts(run_id, name, str(dst))) for name in names if name in present}


def _quiet() -> None:
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in CLI output


def _json_artifact(c, run_id: str, name: str):
    _quiet()
    if name not in {a.path for a in c.list_artifacts(run_id)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(Path(c.download_artifacts(run_id, name, tmp)).read_text())
