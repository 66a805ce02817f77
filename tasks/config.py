"""Typed configuration, loaded and validated in one place.

A run's configuration is a YAML file (configs/default.yaml) plus `key=value`
overrides. Everything is checked here, at load: a bad value fails with a
one-line `GreenlaneError` naming the field and what is allowed, never deep
inside a task. Each field's docstring is its documentation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from tasks.errors import GreenlaneError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
BUNDLED_MODEL = "bundled:SmolLM2-135M-Instruct"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


class MethodStep(BaseModel):
    """One step of a variant's method chain: `{method: NAME, <param>: <value>...}`."""

    model_config = ConfigDict(extra="allow", frozen=True)
    method: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class VariantSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Variant name: letters, digits, `-`, `_`, `.`; used in run names and directories."""
    chain: list[MethodStep] = []
    """Methods applied in order to the base model; empty means the base model itself."""


class GateConfig(_Strict):
    max_accuracy_drop: float = Field(0.01, ge=0.0, le=1.0)
    """Largest allowed fall in task accuracy vs the baseline, as a fraction (0.01 = 1 point), judged on
    `accuracy_drop_bound`."""
    accuracy_drop_bound: Literal["ci95_upper", "point"] = "ci95_upper"
    """Which figure of the drop the gate reads: `ci95_upper`, the upper end of the paired-bootstrap 95%
    interval (a variant cannot pass by luck), or `point`, the observed drop."""
    min_accuracy: float = Field(0.0, ge=0.0, le=1.0)
    """Absolute minimum task accuracy."""
    max_latency_p95_ms: float | None = Field(None, gt=0)
    """Largest allowed p95 end-to-end request latency, ms (None: no latency gate)."""
    max_memory_mb: float | None = Field(None, gt=0)
    """Largest allowed peak memory while serving, MB: the GPU's peak allocation on a GPU, else the process's
    peak resident memory during the benchmark (e.g. 7000 for an 8 GB Jetson Orin Nano; None: no memory gate)."""
    min_top1_agreement: float | None = Field(None, ge=0.0, le=1.0)
    """Smallest allowed fidelity to the base model: the fraction of eval positions where the variant's most
    likely next token is the base model's (None: no fidelity gate)."""


class TargetConfig(_Strict):
    queue: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Airflow queue whose workers run this target's benchmarks (a Celery worker started with `--queues <queue>`,
    on the machine the target describes); letters, digits, `-`, `_`, `.`. The DAGs serve the queues listed in
    env GREENLANE_QUEUES (plus `default`)."""
    worker_wait_s: float = Field(300, ge=0)
    """How long to wait for a live worker on `queue` before giving up on this target for the run: its benchmarks
    are skipped with "no worker for queue X" and its champion does not move (the other targets go on)."""
    hardware: str = "cpu"
    """Hardware profile name for embodied carbon (see `greenlane carbon --list`)."""
    region: str = "CISO"
    """Grid region for operational carbon (QC, CISO, PACE, or an ISO-3 country code)."""
    pue: float = Field(1.0, ge=1.0)
    """Power usage effectiveness of the facility (>= 1.0; typical 1.1-1.6)."""
    energy_meter: str = "auto"
    """Energy meter: `auto` picks from what the hardware offers; or force `codecarbon`, `rapl`, `nvml`, ..."""
    device: Literal["cpu", "cuda"] = "cpu"
    """Where the variants run on this target's worker: `cpu`, or `cuda` (the first GPU: weights, KV cache and
    compute there, so peak memory and NVML energy are of that GPU)."""
    runtimes: list[str] | None = None
    """Inference runtimes this target serves with (`transformers`, `llama.cpp`, `onnxruntime-genai`); a variant
    whose runtime is not listed is skipped on this target, with the reason on the decision record. None: what
    the device can run (cpu and cuda: all three; a Jetson hardware profile: transformers and llama.cpp). A runtime
    listed here must be installed."""
    lifetime_years: float = Field(5.0, gt=0)
    """Hardware lifetime over which its manufacturing carbon is amortized, years."""
    energy_usd_per_kwh: float | None = Field(None, ge=0)
    """Electricity price, USD/kWh (None: not priced)."""
    instance_usd_per_hour: float | None = Field(None, ge=0)
    """Machine/instance price, USD/hour (None: not priced)."""
    gates: dict[str, Any] = {}
    """Per-target overrides of the top-level `gates` (e.g. `{max_memory_mb: 7000}` for a Jetson)."""

    @field_validator("gates")
    @classmethod
    def _known_gates(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(GateConfig.model_fields))
        if unknown:
            raise ValueError(f"unknown gate(s) {', '.join(unknown)}; known: {', '.join(GateConfig.model_fields)}")
        GateConfig(**value)  # each value within its gate's bounds
        return value

    @field_validator("runtimes")
    @classmethod
    def _known_runtimes(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        from tasks import runtimes

        for name in value or []:
            if name not in runtimes.RUNTIMES:
                raise ValueError(f"unknown runtime {name!r}; runtimes: {', '.join(runtimes.RUNTIMES)}")
            if _checks_this_machine(info) and not runtimes.installed(name):
                raise ValueError(f"runtime {name!r} is listed but not installed here (python package "
                                 f"{runtimes.PACKAGES[name]}; see the README's install section)")
        return value

    def served_runtimes(self) -> list[str]:
        """The runtimes this target benchmarks and serves variants in."""
        from tasks import runtimes

        if self.runtimes is not None:
            return list(self.runtimes)
        kind = "jetson" if self.hardware.startswith("jetson") else self.device
        return list(runtimes.DEVICE_RUNTIMES[kind])

    @field_validator("hardware")
    @classmethod
    def _known_hardware(cls, value: str) -> str:
        from tasks.carbon import hardware

        try:
            hardware.get(value)
        except GreenlaneError as err:
            raise ValueError(str(err)) from None
        return value

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        from tasks.carbon import regions

        try:
            regions.lookup(value)
        except GreenlaneError as err:
            raise ValueError(str(err)) from None
        return value


class EnergyGridConfig(_Strict):
    tin: list[int] = []
    """Input token counts of the token-grid sweep (e.g. [16, 64, 256]); empty: no sweep."""
    tout: list[int] = []
    """Output token counts of the sweep (e.g. [8, 32, 128]); every (tin, tout) pair is one cell."""
    repeats: int = Field(1, ge=1)
    """Requests measured per cell (averaged into one point, so cross-validation never sees a cell twice)."""

    @field_validator("tin", "tout")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError(f"token counts must be >= 1, got {value}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _enough_cells(self) -> "EnergyGridConfig":
        cells = len(self.tin) * len(self.tout)
        if (self.tin or self.tout) and cells < 10:
            raise ValueError(f"tin x tout must give at least 10 cells for the 5-fold cross-validated fit, got "
                             f"{len(self.tin)} x {len(self.tout)} = {cells} (e.g. tin: [16, 64, 256, 512], tout: [8, 32, 128])")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.tin and self.tout)


class BenchmarkConfig(_Strict):
    prompts: int = Field(6, ge=1)
    """Number of prompts (from the shipped prompt set) generated per pass, in a seeded random order per pass."""
    max_new_tokens: int = Field(32, ge=2)
    """Tokens generated per prompt; EOS is suppressed so every request has this length."""
    warmup: int = Field(1, ge=0)
    """Warm-up requests run before measuring; excluded from every figure."""
    repeats: int = Field(2, ge=1)
    """Minimum measured passes over the prompts (each pass is its own energy window)."""
    max_repeats: int = Field(4, ge=1)
    """Most measured passes: passes continue past `repeats` until the CIs reach `ci_target` or this count."""
    ci_target: float = Field(0.05, gt=0, le=1)
    """Stop repeating once the 95% CI half-width of per-request latency and of energy per token is within
    this fraction of the mean (0.05 = 5%)."""
    batch_sizes: list[int] = [1]
    """Batch sizes swept for throughput and J/token (e.g. [1, 4, 16]); 1 reuses the main measurement."""
    energy_grid: EnergyGridConfig = EnergyGridConfig()
    """Optional token-grid sweep fitting E(tin, tout) and runtime(tin, tout) for this variant x target."""
    threads: int | None = Field(None, ge=1)
    """Compute threads during the benchmark, the same in every runtime (None: every core the process may use)."""

    @field_validator("batch_sizes")
    @classmethod
    def _batch_sizes(cls, value: list[int]) -> list[int]:
        if not value or any(b < 1 for b in value):
            raise ValueError(f"batch sizes must be a non-empty list of integers >= 1, got {value}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _repeat_bounds(self) -> "BenchmarkConfig":
        if self.max_repeats < self.repeats:
            raise ValueError(f"max_repeats ({self.max_repeats}) must be >= repeats ({self.repeats}), the minimum number of passes")
        return self


class EvalConfig(_Strict):
    task: str = "sentiment"
    """Shipped task (tasks/data/<task>/eval.jsonl), scored by log-likelihood over its options."""
    limit: int = Field(120, ge=1)
    """Examples scored from the eval split (the first N, fixed order)."""
    perplexity_tokens: int = Field(1024, ge=16)
    """Tokens of held-out text scored for perplexity."""
    lm_eval_tasks: list[str] = []
    """Optional lm-evaluation-harness tasks scored too (needs `pip install 'greenlane[lmeval]'`), by the names
    their YAML files give in `lm_eval_include_path`; logged as `lm_eval/<task>/<metric>`. Empty: none."""
    lm_eval_include_path: str | None = None
    """Folder of lm-eval task YAMLs whose data are local files (`dataset_path: json` + `data_files`, relative
    ones read from this folder); only this folder is searched, the runs are offline. Example:
    `tasks/data/lm_eval`. Relative paths are taken from the working directory at load."""
    lm_eval_limit: int | None = Field(None, ge=1)
    """Examples scored per lm-eval task (the first N; None: all)."""

    @field_validator("lm_eval_include_path")
    @classmethod
    def _task_folder(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = Path(value).expanduser().resolve()
        if not path.is_dir():
            raise ValueError(f"lm-eval task folder not found: {path} (a folder of task YAMLs)")
        return str(path)

    @model_validator(mode="after")
    def _lm_eval_ready(self) -> "EvalConfig":
        if not self.lm_eval_tasks:
            return self
        if self.lm_eval_include_path is None:
            raise ValueError(f"lm_eval_tasks {self.lm_eval_tasks} need lm_eval_include_path, the folder of their "
                             "task YAMLs (e.g. tasks/data/lm_eval)")
        import importlib.util

        if importlib.util.find_spec("lm_eval") is None:
            raise ValueError("lm_eval_tasks need lm-evaluation-harness, which is not installed: "
                             "pip install 'greenlane[lmeval]'")
        return self


class CarbonConfig(_Strict):
    whatif_regions: list[str] = ["QC", "CISO", "PACE"]
    """Regions the champion's what-if placement table compares (each target's own region is added)."""
    hours_csv: str | None = None
    """Optional hourly intensity CSV (timestamp, gco2e_per_kwh) for time-of-day what-ifs."""

    @field_validator("whatif_regions")
    @classmethod
    def _known_regions(cls, value: list[str]) -> list[str]:
        for region in value:
            TargetConfig._known_region(region)
        return value


class MlflowConfig(_Strict):
    tracking_uri: str | None = None
    """MLflow tracking URI; default: env MLFLOW_TRACKING_URI (as MLflow itself reads it, e.g. the
    docker-compose stack's server), else a SQLite store under the greenlane home."""
    experiment: str | None = None
    """Experiment name; default `greenlane-<base model name>`."""
    registered_model: str | None = None
    """Registered model name; default: the base model's name."""


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
    seed: int = 0
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


def greenlane_home() -> Path:
    """Where runs, caches and the embedded stores live (env GREENLANE_HOME, default ./.greenlane)."""
    return Path(os.environ.get("GREENLANE_HOME", REPO_ROOT / ".greenlane")).resolve()


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
        node[parts[-1]] = yaml.safe_load(value) if isinstance(value, str) else value
    return out


def _split_pair(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key.strip():
        raise GreenlaneError(f"--set expects key=value, got {pair!r}")
    return key.strip(), value


def _deep_merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
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
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise GreenlaneError(f"config {path} is not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    if not isinstance(raw, dict):
        raise GreenlaneError(f"config {path} must be a mapping of settings, got {type(raw).__name__}")
    raw = _deep_merge(raw, parse_overrides(overrides))
    return config_from_dict(raw, origin=str(path), this_machine=True)


def _checks_this_machine(info: ValidationInfo) -> bool:
    """Whether validation also checks this machine (installed runtimes): when a user's config is loaded
    (`load_config`), not when a task on another worker re-reads the run's validated config."""
    return bool(info.context and info.context.get("this_machine"))


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
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden" and field in REMOVED_FIELDS:
            msg = REMOVED_FIELDS[field]
        more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise GreenlaneError(f"{origin}: {field}: {msg}{more}") from None
    except GreenlaneError as err:
        raise GreenlaneError(f"{origin}: {err}") from None
