"""Reading back what the pipeline logged: the champion of a target and its baseline."""

from __future__ import annotations

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
    """(tracking URI, registered model name) a config points at, with the embedded defaults."""
    from tasks.config import greenlane_home
    from tasks.models import model_name

    uri = cfg.mlflow.tracking_uri or f"sqlite:///{greenlane_home() / 'mlflow.db'}"
    return uri, cfg.mlflow.registered_model or model_name(cfg.base_model)
