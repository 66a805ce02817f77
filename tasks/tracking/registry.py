"""Registered model versions and champion aliases.

Each variant is a version of one registered model named after the base model.
Promotion moves `champion-<target>` (and `champion` for the default target),
one call per alias, and pushes the alias's previous holder onto the target's
history: a registered-model tag `history-champion-<target>` holding a JSON list
of versions, oldest first. A rollback pops that list, so N rollbacks walk back
N champions and never forward. The tag is read, changed and written back
without a lock (MLflow has no compare-and-set): two runs promoting one target
in the same instant could lose one history entry.
"""

from __future__ import annotations

import json

from mlflow.exceptions import MlflowException

from tasks.errors import GreenlaneError
from tasks.tracking.runs import client

# Oldest entries beyond this are dropped: 500 versions are ~4 KB, far below MLflow's 100,000-character tag values.
HISTORY_LIMIT = 500


def alias_for(target: str) -> str:
    return f"champion-{target}"


def history_tag(target: str) -> str:
    return f"history-{alias_for(target)}"


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


def champion_history(tracking_uri: str, name: str, target: str) -> list[str]:
    """The target's earlier champions, oldest first; the last is what a rollback restores."""
    try:
        tags = client(tracking_uri).get_registered_model(name).tags
    except MlflowException:
        raise GreenlaneError(f"no registered model {name!r} at {tracking_uri}") from None
    raw = tags.get(history_tag(target))
    if raw is None:
        return []
    try:
        history = json.loads(raw)
    except ValueError:
        history = None
    if not isinstance(history, list) or not all(isinstance(v, str) for v in history):
        raise GreenlaneError(f"{name}: tag {history_tag(target)!r} is not a JSON list of version strings "
                             f"({raw[:80]!r}); fix or delete it in the MLflow UI")
    return history


def _write_history(tracking_uri: str, name: str, target: str, history: list[str]) -> None:
    client(tracking_uri).set_registered_model_tag(name, history_tag(target), json.dumps(history[-HISTORY_LIMIT:]))


def _move(tracking_uri: str, name: str, target: str, version: str, is_default: bool, note: str) -> None:
    c = client(tracking_uri)
    c.set_registered_model_alias(name, alias_for(target), version)
    if is_default:
        c.set_registered_model_alias(name, "champion", version)
    c.set_model_version_tag(name, version, f"decision-{target}", note[:5000])


def promote(tracking_uri: str, name: str, target: str, version: str, is_default: bool, decision_note: str) -> dict:
    """Move the target's alias (and `champion` for the default target) to `version`, keeping the old holder."""
    version = str(version)
    previous = current_champion(tracking_uri, name, target)
    if previous is not None and previous != version:
        _write_history(tracking_uri, name, target, [*champion_history(tracking_uri, name, target), previous])
    _move(tracking_uri, name, target, version, is_default, decision_note)
    return {"alias": alias_for(target), "version": version, "previous": previous}


def rollback(tracking_uri: str, name: str, target: str, is_default: bool, skip_deleted: bool = False) -> dict:
    """Point `champion-<target>` at the champion before the current one, and drop it from the history.

    Nothing moves when the history is empty or its last version was deleted from the registry;
    with `skip_deleted`, deleted versions are dropped and the latest one still registered is restored.
    """
    history = champion_history(tracking_uri, name, target)
    current = current_champion(tracking_uri, name, target)
    skipped = []
    while history:
        version = history[-1]
        if version == current:  # not a step back (left by a promotion interrupted between its writes)
            history.pop()
        elif not _exists(tracking_uri, name, version):
            if not skip_deleted:
                raise GreenlaneError(
                    f"{name}: version {version}, the previous champion of target {target!r}, was deleted from the "
                    f"registry; nothing moved (--skip-deleted restores the latest earlier one still there)")
            skipped.append(history.pop())
        else:
            break
    if not history:
        raise GreenlaneError(f"{name}: no earlier champion of target {target!r} is recorded"
                             f"{' that still exists' if skipped else ''} (current: {current or 'none'}); "
                             f"nothing to roll back to")
    version = history.pop()
    _move(tracking_uri, name, target, version, is_default, f"rollback of {alias_for(target)}")
    _write_history(tracking_uri, name, target, history)
    return {"alias": alias_for(target), "version": version, "replaced": current, "skipped_deleted": skipped,
            "history": history}


def undo_promotion(tracking_uri: str, name: str, target: str, version: str) -> str | None:
    """Put the target's aliases back where they were before a promotion to `version` (a cancelled run's):
    the previous holder from the history, or no alias when `version` was the target's first champion.
    Returns what was done, None when the target's alias does not point at `version`."""
    c = client(tracking_uri)
    version = str(version)
    aliases = {alias: str(v) for alias, v in c.get_registered_model(name).aliases.items()}  # versions may be ints
    if aliases.get(alias_for(target)) != version:
        return None
    is_default = aliases.get("champion") == version
    history = champion_history(tracking_uri, name, target)
    if history and history[-1] != version:
        back = rollback(tracking_uri, name, target, is_default)
        return f"{name}@{alias_for(target)} back to version {back['version']}"
    for alias in [alias_for(target), *(["champion"] if is_default else [])]:
        c.delete_registered_model_alias(name, alias)
    return f"{name}@{alias_for(target)} removed (version {version} was its first champion)"


def _exists(tracking_uri: str, name: str, version: str) -> bool:
    try:
        client(tracking_uri).get_model_version(name, version)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise  # an unreachable or failing store is not a deleted version
        return False
    return True


def check_alias(alias: str) -> None:
    """MLflow's own rule for an alias name, checked before any alias moves (a bad one would fail between moves)."""
    from mlflow.utils.validation import _validate_model_alias_name, _validate_model_alias_name_reserved

    try:
        _validate_model_alias_name(alias)
        _validate_model_alias_name_reserved(alias)
    except MlflowException as err:
        raise GreenlaneError(f"alias {alias!r} is not valid for MLflow ({err.message}); rename the target") from None
