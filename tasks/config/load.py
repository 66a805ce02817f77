"""The whole config, and how it is read: YAML + `--set` overrides, a DAG run's params, a task's copy."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from tasks.config.checks import (ALIAS_PART, MAX_ALIAS_LENGTH, MAX_SEED, _checks_this_machine, _Strict,
                                 check_registered_model, check_tracking_uri)
from tasks.config.paths import BUNDLED_MODEL, DEFAULT_CONFIG, greenlane_home, run_dir
from tasks.config.sections import (BenchmarkConfig, CarbonConfig, EvalConfig, GateConfig, MlflowConfig, TargetConfig,
                                   VariantSpec)
from tasks.config.serve import ServeConfig
from tasks.errors import GreenlaneError


class GreenlaneConfig(_Strict):
    base_model: str = BUNDLED_MODEL
    """A Hugging Face id (from the local cache; loading is offline), a local directory, or `bundled:SmolLM2-135M-Instruct`."""
    variants: list[VariantSpec]
    """Variants to build and compare; must include one named `baseline` with an empty chain."""
    targets: dict[str, TargetConfig] = {"cpu": TargetConfig()}
    """Where the variants will run, by target name."""
    default_target: str = "cpu"
    """The target whose champion also gets the plain `champion` alias."""
    benchmark: BenchmarkConfig = BenchmarkConfig()
    eval: EvalConfig = EvalConfig()
    gates: GateConfig = GateConfig()
    carbon: CarbonConfig = CarbonConfig()
    mlflow: MlflowConfig = MlflowConfig()
    serve: ServeConfig = ServeConfig()
    seed: int = Field(0, ge=0, le=MAX_SEED)
    """Seed for every random choice (tiny model init, sampling order)."""

    @field_validator("variants", mode="before")
    @classmethod
    def _expand_presets(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        from tasks.compression import PRESETS

        out = []
        for item in value:
            if isinstance(item, str):
                if item not in PRESETS:
                    raise ValueError(f"unknown variant {item!r}; built-in variants: {', '.join(PRESETS)} (or give {{name, chain}})")
                item = {"name": item, "chain": PRESETS[item]}
            out.append(item)
        return out

    @field_validator("targets")
    @classmethod
    def _alias_names(cls, value: dict[str, TargetConfig]) -> dict[str, TargetConfig]:
        for target in value:  # its champion alias is `champion-<target>`: MLflow must accept it
            if not ALIAS_PART.match(target) or len(f"champion-{target}") > MAX_ALIAS_LENGTH:
                raise ValueError(f"target name {target!r} must be letters, digits, '_' or '-' (at most "
                                 f"{MAX_ALIAS_LENGTH - len('champion-')} characters): it names the MLflow alias "
                                 "champion-<target>")
        if not value:
            raise ValueError("at least one target is needed")
        return value

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> "GreenlaneConfig":
        from tasks import runtimes
        from tasks.compression import validate_step
        from tasks.variants import chain_runtime, check_chain

        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate variant names: {', '.join(dupes)}")
        if "baseline" not in names:
            raise ValueError("variants must include 'baseline' (the reference the gates compare against)")
        if next(v for v in self.variants if v.name == "baseline").chain:
            raise ValueError("variant 'baseline' must have an empty chain")
        for v in self.variants:
            for i, step in enumerate(v.chain):
                validate_step(step.method, step.params, where=f"variants[{v.name}].chain[{i}]")
            check_chain(v)
            runtime = chain_runtime(v)
            if _checks_this_machine(info) and not runtimes.installed(runtime):  # its export step runs its converter
                raise ValueError(f"variants[{v.name}]: runs in {runtime}, which is not installed here (python package "
                                 f"{runtimes.PACKAGES[runtime]}; see the README's install section)")
        if self.default_target not in self.targets:
            raise ValueError(f"default_target {self.default_target!r} is not one of the targets: {', '.join(self.targets)}")
        if self.mlflow.registered_model is None and Path(self.base_model).exists():  # a directory's name, as is
            from tasks.models import model_name

            check_registered_model(model_name(self.base_model))
        if _checks_this_machine(info) and os.environ.get("MLFLOW_TRACKING_URI") and not self.mlflow.tracking_uri:
            check_tracking_uri(os.environ["MLFLOW_TRACKING_URI"], "env MLFLOW_TRACKING_URI")
        return self

    def tracking_uri(self) -> str:
        """The MLflow store this run logs to (see `mlflow.tracking_uri`)."""
        return (self.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
                or f"sqlite:///{greenlane_home() / 'mlflow.db'}")

    def skip_reason(self, variant: str, target: str) -> str | None:
        """Why `variant` is not benchmarked on `target` (its runtime is not one the target serves), or None."""
        from tasks.variants import chain_runtime

        runtime = chain_runtime(self.variant(variant))
        served = self.targets[target].served_runtimes()
        if runtime in served:
            return None
        return f"runs in {runtime}, which target {target} does not serve (its runtimes: {', '.join(served)})"

    def gates_for(self, target: str) -> GateConfig:
        """The top-level gates with the target's own overrides applied."""
        return self.gates.model_copy(update=self.targets[target].gates)

    def variant(self, name: str) -> VariantSpec:
        for v in self.variants:
            if v.name == name:
                return v
        raise GreenlaneError(f"no variant named {name!r} in the config")


def parse_overrides(pairs: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    """`["a.b=1", "variants=[baseline, bf16]"]` -> nested dict; values are parsed as YAML."""
    if not pairs:
        return {}
    items = pairs.items() if isinstance(pairs, dict) else [_split_pair(p) for p in pairs]
    out: dict[str, Any] = {}
    for key, value in items:
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise GreenlaneError(f"override {key!r} conflicts with another override")
        node[parts[-1]] = _yaml_value(key, value) if isinstance(value, str) else value
    return out


def _yaml_value(key: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise GreenlaneError(f"--set {key}: the value {text!r} is not valid YAML{_yaml_problem(err, lines=False)}") from None


def _yaml_problem(err: yaml.YAMLError, lines: bool = True) -> str:
    """Where and what, on one line: a ReaderError (a control character) has no mark, and its str spans lines."""
    mark = getattr(err, "problem_mark", None)
    where = "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})" if lines else f" at column {mark.column + 1}"
    problem = getattr(err, "problem", None) or getattr(err, "reason", None) or str(err)
    return f"{where}: {' '.join(str(problem).split())}"


def _split_pair(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key.strip():
        raise GreenlaneError(f"--set expects key=value, got {pair!r}")
    if not all(part.strip() for part in key.split(".")):
        raise GreenlaneError(f"--set {key.strip()!r}: a key is dotted names, like benchmark.prompts")
    return key.strip(), value


def deep_merge(base: dict, extra: dict) -> dict:
    """`base` with `extra` laid over it, key by key into nested mappings; neither is modified."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path | None = None, overrides: list[str] | dict | None = None) -> GreenlaneConfig:
    """Read YAML, apply overrides, validate. Raises GreenlaneError with the offending field named."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise GreenlaneError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError) as err:
        raise GreenlaneError(f"cannot read config {path}: {type(err).__name__}: {err}") from None
    except yaml.YAMLError as err:
        raise GreenlaneError(f"config {path} is not valid YAML{_yaml_problem(err)}") from None
    if not isinstance(raw, dict):
        raise GreenlaneError(f"config {path} must be a mapping of settings, got {type(raw).__name__}")
    raw = deep_merge(raw, parse_overrides(overrides))
    return config_from_dict(raw, origin=str(path), this_machine=True)


# Settings greenlane no longer reads, with the reason, so an old config fails with more than "extra input".
REMOVED_FIELDS = {
    "trust_remote_code": "greenlane never runs a model repository's own Python code, so this setting was removed; "
                         "delete it and use a base model whose architecture transformers ships",
}


def config_from_dict(raw: dict, origin: str = "config", this_machine: bool = False) -> GreenlaneConfig:
    try:
        return GreenlaneConfig.model_validate(raw, context={"this_machine": this_machine})
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) if str(p).isprintable() else repr(p) for p in first["loc"]) or "(top level)"
        msg = " ".join(first["msg"].removeprefix("Value error, ").splitlines())  # one line, always
        if first["type"] == "extra_forbidden" and field in REMOVED_FIELDS:
            msg = REMOVED_FIELDS[field]
        more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise GreenlaneError(f"{origin}: {field}: {msg}{more}") from None
    except GreenlaneError as err:
        raise GreenlaneError(f"{origin}: {err}") from None


# --- a DAG run's config: from the trigger form's params, and as its tasks read it back ------------------------

GATE_PARAMS = ("max_accuracy_drop", "min_accuracy", "max_latency_p95_ms")


def config_from_params(params: dict) -> GreenlaneConfig:
    """The config a triggered run uses: the YAML, then the typed params, then the free-form `overrides`."""
    base = load_config(params.get("config_path"), None)
    raw = base.model_dump(mode="json")
    if params.get("base_model"):
        raw["base_model"] = params["base_model"]
    if params.get("variants"):
        raw["variants"] = list(params["variants"])
    if params.get("targets"):  # replaces the config's targets: the form says exactly where the run goes
        raw["targets"] = {name: dict(t) for name, t in params["targets"].items()}
        if raw.get("default_target") not in raw["targets"]:
            raw["default_target"] = next(iter(raw["targets"]))
    if params.get("region"):
        for target in raw["targets"].values():
            target["region"] = params["region"]
    for gate in GATE_PARAMS:
        if params.get(gate) is not None:
            raw.setdefault("gates", {})[gate] = params[gate]
    merged = deep_merge(raw, parse_overrides(params.get("overrides") or {}))
    return config_from_dict(merged, origin="DAG params")


def params_config_file(params: dict, dag_run_id: str) -> str:
    """Validate the params and write the config they describe into the run directory; returns its path."""
    cfg = config_from_params(params)
    path = run_dir(dag_run_id) / "params-config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return str(path)


def load_ctx_config(ctx: dict) -> GreenlaneConfig:
    """The validated config every task of a DAG run reads: `ctx["config_file"]`, written by `pipeline.prepare`."""
    return config_from_dict(json.loads(Path(ctx["config_file"]).read_text()), origin=ctx["config_file"])
