"""Typed configuration, loaded and validated in one place.

A run's configuration is a YAML file (configs/default.yaml) plus `key=value`
overrides. Everything is checked here, at load: a bad value fails with a
one-line `GreenlaneError` naming the field and what is allowed, never deep
inside a task. Each field's docstring is its documentation.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from tasks.errors import GreenlaneError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
BUNDLED_MODEL = "bundled:SmolLM2-135M-Instruct"


# Upper bounds on sizes, so a typo like 10^9 fails at load instead of as a MemoryError hours later. Each is far
# above any useful run on the machines greenlane targets; raise one here if a real run needs more.
MAX_PROMPTS = 10_000  # benchmark.prompts: prompts per measured pass
MAX_NEW_TOKENS = 32_768  # benchmark.max_new_tokens: tokens generated per request
MAX_PASSES = 1_000  # benchmark.warmup, repeats, max_repeats, energy_grid.repeats
MAX_BATCH_SIZE = 1_024  # benchmark.batch_sizes
MAX_THREADS = 4_096  # benchmark.threads
MAX_GRID_TOKENS = 131_072  # benchmark.energy_grid.tin / tout: the longest context of common small models
MAX_GRID_CELLS = 1_000  # benchmark.energy_grid: tin x tout cells
MAX_SEED = 2**32 - 1  # seed: numpy's and torch's seed range
# MLflow 3.17's rule for alias names (mlflow/utils/validation.py, _REGISTERED_MODEL_ALIAS_REGEX and
# MAX_REGISTERED_MODEL_ALIAS_LENGTH): a target's alias is `champion-<target>`, so a target name must pass it too.
ALIAS_PART = re.compile(r"^[\w\-]+$")
MAX_ALIAS_LENGTH = 255
# Registered model names end up inside MLflow search filters (`name='...'`); MLflow itself forbids `/` and `:`.
REGISTERED_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$")
# URI schemes MLflow 3.17 has a tracking store for (mlflow.tracking._tracking_service.utils); "" is a plain path.
TRACKING_SCHEMES = ("", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks",
                    "databricks-uc", "uc")


class _Strict(BaseModel):
    # allow_inf_nan=False: `.inf` or `.nan` (YAML) in any float field fails here, not as a crash in the carbon maths
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True, allow_inf_nan=False)


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
    repeats: int = Field(1, ge=1, le=MAX_PASSES)
    """Requests measured per cell (averaged into one point, so cross-validation never sees a cell twice)."""

    @field_validator("tin", "tout")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(not 1 <= v <= MAX_GRID_TOKENS for v in value):
            raise ValueError(f"token counts must be from 1 to {MAX_GRID_TOKENS:,} (MAX_GRID_TOKENS), got {value}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _enough_cells(self) -> "EnergyGridConfig":
        cells = len(self.tin) * len(self.tout)
        if (self.tin or self.tout) and cells < 10:
            raise ValueError(f"tin x tout must give at least 10 cells for the 5-fold cross-validated fit, got "
                             f"{len(self.tin)} x {len(self.tout)} = {cells} (e.g. tin: [16, 64, 256, 512], tout: [8, 32, 128])")
        if cells > MAX_GRID_CELLS:
            raise ValueError(f"tin x tout gives {cells:,} cells; at most {MAX_GRID_CELLS:,} (MAX_GRID_CELLS)")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.tin and self.tout)


class BenchmarkConfig(_Strict):
    prompts: int = Field(6, ge=1, le=MAX_PROMPTS)
    """Number of prompts (from the shipped prompt set) generated per pass, in a seeded random order per pass."""
    max_new_tokens: int = Field(32, ge=2, le=MAX_NEW_TOKENS)
    """Tokens generated per prompt; EOS is suppressed so every request has this length."""
    warmup: int = Field(1, ge=0, le=MAX_PASSES)
    """Warm-up requests run before measuring; excluded from every figure."""
    repeats: int = Field(2, ge=1, le=MAX_PASSES)
    """Minimum measured passes over the prompts (each pass is its own energy window)."""
    max_repeats: int = Field(4, ge=1, le=MAX_PASSES)
    """Most measured passes: passes continue past `repeats` until the CIs reach `ci_target` or this count."""
    ci_target: float = Field(0.05, gt=0, le=1)
    """Stop repeating once the 95% CI half-width of per-request latency and of energy per token is within
    this fraction of the mean (0.05 = 5%)."""
    batch_sizes: list[int] = [1]
    """Batch sizes swept for throughput and J/token (e.g. [1, 4, 16]); 1 reuses the main measurement."""
    energy_grid: EnergyGridConfig = EnergyGridConfig()
    """Optional token-grid sweep fitting E(tin, tout) and runtime(tin, tout) for this variant x target."""
    threads: int | None = Field(None, ge=1, le=MAX_THREADS)
    """Compute threads during the benchmark, the same in every runtime (None: every core the process may use)."""

    @field_validator("batch_sizes")
    @classmethod
    def _batch_sizes(cls, value: list[int]) -> list[int]:
        if not value or any(not 1 <= b <= MAX_BATCH_SIZE for b in value):
            raise ValueError(f"batch sizes must be a non-empty list of integers from 1 to {MAX_BATCH_SIZE:,} "
                             f"(MAX_BATCH_SIZE), got {value}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _repeat_bounds(self) -> "BenchmarkConfig":
        if self.max_repeats < self.repeats:
            raise ValueError(f"max_repeats ({self.max_repeats}) must be >= repeats ({self.repeats}), the minimum number of passes")
        return self


class EvalConfig(_Strict):
    task: str = "sentiment"
    """The eval task: a shipped one (`sentiment`, `capitals` yes/no, `capitals_mc` multiple choice; see
    tasks/evaltasks/__init__.py) or the path of a task YAML of your own (README: "Your own eval task"). Accuracy is scored
    on its eval split by log-likelihood over its options; training methods learn from its train split. A path
    is stored absolute (relative ones are taken from the working directory at load)."""
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

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str, info: ValidationInfo) -> str:
        """Where a user's config is loaded, the task's YAML and both splits are read and checked (a bad label
        fails here, naming file and line); a worker re-reading the run's config only checks the name."""
        from tasks import evaltasks

        try:
            return evaltasks.resolve(value, read_data=_checks_this_machine(info))
        except GreenlaneError as err:
            raise ValueError(str(err)) from None

    @field_validator("lm_eval_include_path")
    @classmethod
    def _task_folder(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = _local_path(value)
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

    @field_validator("hours_csv")
    @classmethod
    def _readable_hours(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Read once at load (a year of hours is 8,760 rows), so a missing or malformed file fails before any
        benchmark, not in the what-if step after the champion moved."""
        if value is None or not _checks_this_machine(info):
            return value
        from tasks.carbon import regions

        path = _local_path(value)
        try:
            regions.read_hourly_csv(path)
        except GreenlaneError as err:
            raise ValueError(str(err)) from None
        except OSError as err:  # e.g. not readable by this user
            raise ValueError(f"cannot read hourly intensity CSV {str(path)!r}: {err.strerror or err}") from None
        return str(path)


class MlflowConfig(_Strict):
    tracking_uri: str | None = None
    """MLflow tracking URI; default: env MLFLOW_TRACKING_URI (as MLflow itself reads it, e.g. the
    docker-compose stack's server), else a SQLite store under the greenlane home."""
    experiment: str | None = None
    """Experiment name; default `greenlane-<base model name>`."""
    registered_model: str | None = None
    """Registered model name; default: the base model's name. Letters, digits, `_`, `.`, `-` (up to 256)."""
    register_variants: Literal["passing", "all"] = "passing"
    """Which benchmarked variants become model versions: `passing` (those that passed their target's gates,
    so a weekly schedule does not flood the registry) or `all`. The decision record lists every variant either way."""
    # The retry budget of each MLflow HTTP request (tasks/tracking/outage.py): set as MLflow's own
    # MLFLOW_HTTP_REQUEST_* variables for the run's tasks, unless that variable is already set. Bounds: MLflow's.
    http_max_retries: int = Field(3, ge=0, le=10)
    """Retries of one MLflow HTTP request (MLFLOW_HTTP_REQUEST_MAX_RETRIES; MLflow's default 7 makes each call to
    a dead server block ~250 s). With the defaults a dead server fails a call in under 10 s, a hung one in under 50 s."""
    http_backoff_factor: int = Field(1, ge=0, le=120)
    """Seconds, a whole number as MLflow reads it: retry n waits factor x 2^(n-1) (MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR)."""
    http_backoff_jitter: float = Field(1.0, ge=0.0, le=60.0)
    """Seconds of random extra wait per retry (MLFLOW_HTTP_REQUEST_BACKOFF_JITTER)."""
    http_timeout_s: int = Field(10, ge=1, le=600)
    """Seconds one try may take to connect and answer (MLFLOW_HTTP_REQUEST_TIMEOUT; MLflow's default 120)."""

    @field_validator("tracking_uri")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        return None if value is None else check_tracking_uri(value, "tracking_uri")

    @field_validator("registered_model")
    @classmethod
    def _registry_name(cls, value: str | None) -> str | None:
        return None if value is None else check_registered_model(value)


def check_tracking_uri(uri: str, where: str) -> str:
    """`uri` if MLflow has a tracking store for its scheme (as mlflow.utils.uri.get_uri_scheme reads it)."""
    scheme = urllib.parse.urlparse(uri).scheme.lower().split("+")[0]  # postgresql+psycopg2 -> postgresql
    if len(scheme) == 1:  # a Windows drive letter: a path
        scheme = ""
    if scheme not in TRACKING_SCHEMES:
        raise ValueError(f"{where} {uri!r}: MLflow has no tracking store for scheme {scheme!r}; use one of "
                         f"{', '.join(s + '://' for s in TRACKING_SCHEMES if s)} or a local path")
    return uri


def check_store_writable(uri: str) -> None:
    """A GreenlaneError unless this user can write a local SQLite store: the file, and its folder (SQLite's journal).

    Checked by what writes (`greenlane run`, the prepare task), not at every load: reading a champion from a
    read-only store is fine. os.access honours read-only mounts and `chattr +i`, for root too. A server's store
    is the server's business.
    """
    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri.removeprefix("sqlite:///").split("?")[0])
    if str(path) in ("", ".", ":memory:"):
        return
    # An absent store is created, with any missing folders, under the nearest folder that exists.
    must_write = [path, path.parent] if path.exists() else [next(p for p in path.parents if p.exists())]
    for p in must_write:
        if p.exists() and not os.access(p, os.W_OK):
            raise GreenlaneError(f"MLflow store {uri} is read-only here ({p} is not writable): make it writable, or "
                                 "set GREENLANE_HOME or mlflow.tracking_uri to a writable place")


def check_registered_model(name: str) -> str:
    if not REGISTERED_MODEL.match(name):
        raise ValueError(f"registered model name {name!r} may hold only letters, digits, '_', '.', '-' (starting with "
                         "a letter or digit, at most 256); set mlflow.registered_model")
    return name


class ServeConfig(_Strict):
    """`greenlane serve`: the OpenAI-compatible server of a champion (tasks/serving). Every knob is also a CLI flag."""

    host: str = "127.0.0.1"
    """Address to bind. Anything but a loopback address needs `api_key_env` set (or `--insecure`)."""
    port: int = Field(8000, ge=1, le=65535)
    """TCP port to listen on."""
    cache: Literal["none", "lru", "redis"] = "lru"
    """Response cache for deterministic (temperature 0) requests: `none`, `lru` (in this process), or `redis`
    (shared by servers and kept across restarts). Keys include the model version, so a promotion never serves
    the previous champion's answer."""
    cache_size: int = Field(1024, ge=1)
    """Most responses the `lru` cache keeps (least recently used evicted first)."""
    redis_url: str | None = None
    """Redis for `cache: redis`, e.g. `redis://127.0.0.1:6379/0` (the compose stack's `redis://redis:6379/1`)."""
    cache_ttl_s: int = Field(86400, ge=1)
    """How long a cached response lives in Redis, seconds."""
    batching: bool = True
    """Serve requests that arrive within `max_wait_ms` of each other as one batch (where the runtime batches:
    transformers; llama.cpp and onnxruntime-genai variants run a batch's requests one after another)."""
    max_batch: int = Field(8, ge=1, le=256)
    """Most requests in one batch."""
    max_wait_ms: float = Field(10.0, ge=0, le=10000)
    """How long the first request of a batch waits for others, milliseconds (added to its latency at low load)."""
    max_queue: int = Field(1024, ge=1)
    """Most requests waiting for the model; beyond it a request gets 503 (bounds memory under load)."""
    max_tokens_limit: int = Field(256, ge=1)
    """Largest `max_tokens` a request may ask for (a larger one gets 400)."""
    default_max_tokens: int = Field(64, ge=1)
    """`max_tokens` of a request that does not set it."""
    max_prompt_chars: int = Field(16000, ge=1)
    """Longest prompt (completions) or sum of message contents (chat), characters (a longer one gets 400)."""
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Name of the environment variable holding the bearer token /v1/* requires (None: no auth). /health and
    /metrics stay open."""
    threads: int | None = Field(None, ge=1)
    """Compute threads of the runtime (None: every core this process may use)."""
    energy_window_s: float = Field(10.0, ge=0.5)
    """Energy meter window, seconds: the counters advance once per window (shorter: fresher, more metering CPU)."""

    @model_validator(mode="after")
    def _consistent(self) -> "ServeConfig":
        if self.cache == "redis" and not self.redis_url:
            raise ValueError("cache: redis needs redis_url (e.g. redis://127.0.0.1:6379/0)")
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError(f"default_max_tokens ({self.default_max_tokens}) must be <= max_tokens_limit "
                             f"({self.max_tokens_limit})")
        return self


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


def greenlane_home() -> Path:
    """Where runs, caches and the embedded stores live (env GREENLANE_HOME, default ./.greenlane)."""
    return Path(os.environ.get("GREENLANE_HOME", REPO_ROOT / ".greenlane")).resolve()


def safe_name(name: str) -> str:
    """`name` as one path component: anything but letters, digits and `_.@-` becomes `_` (Airflow run ids carry
    `:` and `+`)."""
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", name)


def run_dir(dag_run_id: str) -> Path:
    """The directory of one DAG run's files (config, variants, results, decision), under `greenlane_home()`."""
    return greenlane_home() / "runs" / safe_name(dag_run_id)


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


def _local_path(value: str) -> Path:
    """`value` as an absolute path (`~` expanded); a ValueError, as pydantic reports it, when it cannot be one."""
    try:
        return Path(value).expanduser().resolve()
    except (RuntimeError, OSError) as err:  # `~nosuchuser/x`; a path the OS refuses
        raise ValueError(f"{value!r} is not a usable path ({err})") from None


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
