"""Registered model versions and champion aliases.

Each variant is a version of one registered model named after the base model.
Promotion moves `champion-<target>` (and `champion` for the default target),
one call per alias, and records the previous holder as a model tag so a
rollback can restore it.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException

from tasks.tracking.runs import client


def alias_for(target: str) -> str:
    return f"champion-{target}"


def ensure_registered_model(tracking_uri: str, name: str, description: str = "") -> None:
    c = client(tracking_uri)
    try:
        c.get_registered_model(name)
    except MlflowException:
        try:
            c.create_registered_model(name, description=description)
        except MlflowException:  # created concurrently
            pass


def register_variant(tracking_uri: str, name: str, run_id: str, variant: str, artifact_path: str = "model") -> str:
    """Register the run's model artifacts as a version (reusing the version if this run has one)."""
    ensure_registered_model(tracking_uri, name, description="greenlane variants of this base model")
    c = client(tracking_uri)
    found = c.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    if found:
        return str(found[0].version)
    version = c.create_model_version(
        name, source=f"runs:/{run_id}/{artifact_path}", run_id=run_id, tags={"variant": variant}
    )
    return str(version.version)


def current_champion(tracking_uri: str, name: str, target: str) -> str | None:
    try:
        return str(client(tracking_uri).get_model_version_by_alias(name, alias_for(target)).version)
    except MlflowException:
        return None


def promote(tracking_uri: str, name: str, target: str, version: str, is_default: bool, decision_note: str) -> dict:
    """Move the target's alias (and `champion` for the default target) to `version`."""
    c = client(tracking_uri)
    previous = current_champion(tracking_uri, name, target)
    if previous is not None and previous != str(version):
        c.set_registered_model_tag(name, f"previous-{alias_for(target)}", previous)
    version = str(version)
    c.set_registered_model_alias(name, alias_for(target), version)
    if is_default:
        c.set_registered_model_alias(name, "champion", version)
    c.set_model_version_tag(name, version, f"decision-{target}", decision_note[:5000])
    return {"alias": alias_for(target), "version": str(version), "previous": previous}


def rollback(tracking_uri: str, name: str, target: str, is_default: bool) -> dict:
    """Point `champion-<target>` back at the version it held before the last promotion."""
    from tasks.errors import GreenlaneError

    c = client(tracking_uri)
    try:
        tags = c.get_registered_model(name).tags
    except MlflowException:
        raise GreenlaneError(f"no registered model {name!r} at {tracking_uri}") from None
    previous = tags.get(f"previous-{alias_for(target)}")
    if previous is None:
        raise GreenlaneError(f"{name}: no previous champion recorded for target {target!r}; nothing to roll back to")
    return promote(tracking_uri, name, target, previous, is_default, decision_note=f"rollback of {alias_for(target)}")
