"""The config's sections: variants, gates, targets, benchmark, eval, carbon, MLflow. Each field's docstring
is its documentation; each section validates its own fields at load."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tasks.config.checks import (MAX_BATCH_SIZE, MAX_GRID_CELLS, MAX_GRID_TOKENS, MAX_NEW_TOKENS, MAX_PASSES,
                                 MAX_PROMPTS, MAX_THREADS, _checks_this_machine, _local_path, _Strict,
                                 check_registered_model, check_tracking_uri)
from tasks.errors import GreenlaneError


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
