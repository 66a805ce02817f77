"""Energy profiles of champions: fetch a champion's variant from its run, log the fitted E(tin, tout) models."""

from __future__ import annotations

from pathlib import Path

from tasks.errors import GreenlaneError
from tasks.tracking.runs import PARENT_TAG, client, ensure_run, finish, log_record

METADATA = "greenlane_variant.json"  # tasks.variants.METADATA: marks a variant directory


def download_variant(tracking_uri: str, run_id: str, dst: Path) -> Path:
    """The variant directory logged with benchmark run `run_id` (under its `model` artifact), fetched into `dst`."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    local = Path(client(tracking_uri).download_artifacts(run_id, "model", str(dst)))
    found = sorted(local.rglob(METADATA), key=lambda p: len(p.parts))
    if not found:
        raise GreenlaneError(f"run {run_id} has no variant directory (no {METADATA}) under its `model` artifact")
    return found[0].parent


def log_profile(tracking_uri: str, experiment_id: str, parent_run_id: str, key: str, run_name: str,
                metrics: dict, params: dict, tags: dict, files: list[Path], model: tuple[str, str] | None = None) -> str:
    """One child run per profiled champion: fit quality as metrics, the grid and the models as artifacts.

    `model` (registered name, version): the version gets an `energy_profile_run_id` tag pointing at the run.
    """
    run_id = ensure_run(tracking_uri, experiment_id, key=key, run_name=run_name, tags={PARENT_TAG: parent_run_id, **tags})
    log_record(tracking_uri, run_id, metrics=metrics, params=params, tags=tags)
    for path in files:
        client(tracking_uri).log_artifact(run_id, str(path))
    if model is not None:
        client(tracking_uri).set_model_version_tag(model[0], model[1], "energy_profile_run_id", run_id)
    finish(tracking_uri, run_id)
    return run_id
