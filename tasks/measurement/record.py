"""The benchmark's result, typed: the figures of one variant on one target, units in the names, sources named.

`run_benchmark` produces a BenchmarkRecord; the pipeline extends it with the carbon part
(tasks.carbon.accounting.CarbonBreakdown), the worker's own report and the MLflow run id; promotion adds
the registered model version. Parts group the figures of one kind. A part's field names are the record's
JSON keys and its MLflow metric names, so a figure has one name everywhere (`latency_p95_ms` in the
record, in result.json, in the MLflow UI and in a gate).

`to_dict()` is the flat JSON of benchmark.json, result.json and decision.json's `results` (what the report
and routing read); `from_dict()` reads it back. `metrics()` is every number of the measured parts, found
from the field types (never a copied list of keys), the swept families (`tokens_per_s_bs4`,
`lm_eval/<task>/<metric>`) and the carbon part's own metrics.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, dataclass, field, fields

from tasks.errors import GreenlaneError
from tasks.measurement.energy import EnergyReading

if typing.TYPE_CHECKING:  # carbon extends the record; measurement itself computes nothing of it
    from tasks.carbon.accounting import CarbonBreakdown

SETTING = {"metric": False}
"""Field metadata: a number that is a setting of the benchmark, not a figure it measured (never a metric)."""
DETAIL = {"metric": False}
"""Field metadata: a figure kept in the JSON but not logged as an MLflow metric. MLflow's compare-runs view
renders only the first ~50 metric rows, alphabetically (measured: with 57 metrics `gco2e_per_1k_tokens` was not
on the page, with 48 it was), so the logged set stays the figures people compare."""


def _is_number(hint) -> bool:
    """int, float, or either `| None` (bool is its own type in a hint, so flags never count)."""
    if hint in (int, float):
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return bool(args) and all(a in (int, float) for a in args)
    return False


class _Part:
    """A group of figures whose field names are flat keys of the record's JSON."""

    @classmethod
    def metric_names(cls) -> list[str]:
        """Numeric fields, in declaration order, less the settings."""
        hints = typing.get_type_hints(cls)
        return [f.name for f in fields(cls) if f.metadata.get("metric", True) and _is_number(hints[f.name])]

    def metrics(self) -> dict[str, float]:
        values = {name: getattr(self, name) for name in self.metric_names()}
        return {k: float(v) for k, v in {**values, **self.swept()}.items() if _finite(v)}

    def swept(self) -> dict[str, float]:
        """Metrics with one key per swept value (none by default)."""
        return {}

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict):
        return cls(**_pick(cls, d))


def _pick(cls, d: dict) -> dict:
    """The dataclass's fields from a flat dict; a missing required field raises KeyError naming it."""
    out = {}
    for f in fields(cls):
        if f.name in d:
            out[f.name] = d[f.name]
        elif f.default is MISSING and f.default_factory is MISSING:
            raise KeyError(f.name)
    return out


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Energy(_Part):
    """Energy of the measured generation passes (warm-up excluded)."""

    energy_j_per_1k_tokens: float
    """Joules of all measured passes over all their output tokens, x 1000."""
    busy_s_per_1k_tokens: float
    """Seconds the hardware was busy generating, per 1k output tokens (the time embodied carbon is charged for)."""
    energy_j_per_1k_tokens_mean: float = field(metadata=DETAIL)
    """Mean over passes of each pass's J/1k tokens."""
    energy_j_per_1k_tokens_ci95: float | None
    """Half-width of the 95% CI of that mean; None from a single pass."""
    energy_n: int
    """Passes the mean is over."""
    energy_source: str
    """`nvml`, `rapl`, `jetson-ina3221`, or `estimate:<how>`."""
    energy_measured: bool
    """True when the joules come from a hardware counter, not a model."""
    reading: EnergyReading
    """The passes' windows as one reading (gross joules, seconds, the meter's details); JSON key `energy`."""

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["energy"] = out.pop("reading").to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Energy":
        raw = d["energy"]
        reading = EnergyReading(**{f.name: raw[f.name] for f in fields(EnergyReading) if f.name in raw})
        return cls(**_pick(cls, {**d, "reading": reading}))


@dataclass(frozen=True)
class Latency(_Part):
    """Per-request figures over the measured passes (tasks.measurement.latency.summarize)."""

    requests: int = field(metadata=DETAIL)
    latency_mean_ms: float
    latency_ci95_ms: float | None
    """Half-width of the 95% CI of the mean; None from a single request."""
    latency_n: int
    output_tokens: int = field(metadata=DETAIL)
    prompt_tokens: int = field(metadata=DETAIL)
    ttft_ms: float
    tpot_ms: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    tokens_per_s: float


@dataclass(frozen=True)
class Convergence(_Part):
    """How many passes it took for the figures to be as tight as asked."""

    passes: int
    ci_target: float = field(metadata=SETTING)
    """The asked CI half-width as a fraction of the mean (benchmark.ci_target)."""
    ci_converged: bool


@dataclass(frozen=True)
class PhaseSplit(_Part):
    """Prefill vs decode, per token, means over passes (tasks.measurement.passes.phase_split)."""

    prefill_ms_per_token: float
    decode_ms_per_token: float
    prefill_j_per_token: float
    decode_j_per_token: float
    prefill_j_per_token_ci95: float | None = field(metadata=DETAIL)
    decode_j_per_token_ci95: float | None = field(metadata=DETAIL)
    phase_split: str
    """How the split was measured."""
    phase_energy_source: str


@dataclass(frozen=True)
class BatchSweep(_Part):
    """Throughput and energy per token by batch size (JSON and metrics: `tokens_per_s_bs4`, `j_per_token_bs4`)."""

    tokens_per_s_by_batch: dict[int, float]
    j_per_token_by_batch: dict[int, float]
    energy_optimal_batch_size: int
    throughput_optimal_batch_size: int

    def swept(self) -> dict[str, float]:
        return {**{f"tokens_per_s_bs{bs}": v for bs, v in self.tokens_per_s_by_batch.items()},
                **{f"j_per_token_bs{bs}": v for bs, v in self.j_per_token_by_batch.items()}}

    def to_dict(self) -> dict:
        return {**self.swept(), "energy_optimal_batch_size": self.energy_optimal_batch_size,
                "throughput_optimal_batch_size": self.throughput_optimal_batch_size}

    @classmethod
    def from_dict(cls, d: dict) -> "BatchSweep":
        def family(prefix: str) -> dict[int, float]:
            return {int(k[len(prefix):]): v for k, v in d.items() if k.startswith(prefix) and k[len(prefix):].isdigit()}

        return cls(family("tokens_per_s_bs"), family("j_per_token_bs"), d["energy_optimal_batch_size"],
                   d["throughput_optimal_batch_size"])


@dataclass(frozen=True)
class Quality(_Part):
    """Task accuracy (Wilson interval), per-example correctness, perplexity, optional harness figures."""

    accuracy: float
    accuracy_n: int = field(metadata=DETAIL)
    accuracy_ci95: float
    """Half-width of the Wilson interval, whose centre is not exactly `accuracy`."""
    accuracy_ci95_lo: float = field(metadata=DETAIL)
    accuracy_ci95_hi: float = field(metadata=DETAIL)
    perplexity: float
    perplexity_tokens: int = field(metadata=DETAIL)
    correct: list[int] = field(default_factory=list)
    """1/0 per eval example, for paired comparisons with the baseline (left out of decision.json)."""
    lm_eval: dict[str, float] = field(default_factory=dict)
    """`lm_eval/<task>/<metric>` figures of lm-evaluation-harness (eval.lm_eval_tasks), flat in the JSON."""

    def swept(self) -> dict[str, float]:
        return dict(self.lm_eval)

    def to_dict(self) -> dict:
        out = super().to_dict()
        harness = out.pop("lm_eval")
        return {**out, **harness}

    @classmethod
    def from_dict(cls, d: dict) -> "Quality":
        return cls(**_pick(cls, {**d, "lm_eval": {k: v for k, v in d.items() if k.startswith("lm_eval/")}}))


@dataclass(frozen=True)
class Fidelity(_Part):
    """Closeness to the base model's next-token distributions (None without a reference)."""

    kl_to_baseline: float | None
    top1_agreement: float | None
    fidelity_positions: int | None = field(default=None, metadata=DETAIL)
    fidelity_method: str | None = None
    reference_topk_mass: float | None = field(default=None, metadata=DETAIL)


@dataclass(frozen=True)
class Memory(_Part):
    """Size on disk and in memory, and what loading cost."""

    param_count: int
    model_size_mb: float
    model_memory_mb: float
    peak_memory_mb: float
    peak_memory_source: str
    load_s: float = field(metadata=DETAIL)


@dataclass(frozen=True)
class EnergyModelFit(_Part):
    """E(tin, tout) and runtime(tin, tout) fitted on the token grid (benchmark.energy_grid)."""

    energy_model: dict
    """Per fitted quantity: form, weighting and its summary (tasks.energy_model)."""
    energy_model_source: str
    energy_model_cells: int = field(metadata=DETAIL)
    energy_model_cv_mdape: float
    energy_model_r2: float = field(metadata=DETAIL)
    runtime_model_cv_mdape: float
    runtime_model_r2: float = field(metadata=DETAIL)


@dataclass(frozen=True)
class Hardware:
    """What ran the benchmark: the config's claim beside what the machine says it is (a nested JSON object)."""

    configured: str
    """The target's hardware profile as the config names it."""
    machine: str
    processor: str
    threads: int | None
    worker_report: dict = field(default_factory=dict)
    """The worker's own report (hostname, CPU, GPUs, detected profile), added by the pipeline."""
    profile_used: str | None = None
    """The hardware profile embodied carbon used, and why (`profile_from`)."""
    profile_from: str | None = None

    def to_dict(self) -> dict:
        out = {"configured": self.configured, "machine": self.machine, "processor": self.processor,
               "threads": self.threads, **self.worker_report}
        if self.profile_used is not None:
            out.update(profile_used=self.profile_used, profile_from=self.profile_from)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Hardware":
        own = {f.name for f in fields(cls)} - {"worker_report"}
        return cls(**{k: d.get(k) for k in own}, worker_report={k: v for k, v in d.items() if k not in own})


# Parts whose fields are flat keys of the JSON, in the order they are written.
FLAT_PARTS = ("energy", "latency", "convergence", "phases", "batch", "quality", "fidelity", "memory", "energy_fit")


@dataclass(frozen=True)
class BenchmarkRecord:
    """One variant benchmarked on one target. Build a changed copy with dataclasses.replace."""

    variant: str
    target: str
    chain: str
    """The variant's method chain, as written by tasks.variants."""
    runtime: str
    device: str
    hardware: Hardware
    energy: Energy
    latency: Latency
    convergence: Convergence
    phases: PhaseSplit
    batch: BatchSweep
    quality: Quality
    fidelity: Fidelity
    memory: Memory
    prompt_order_seed: int
    samples: list[dict] = field(default_factory=list)
    """Prompt and output of each request of the first pass: what the variant actually says."""
    energy_fit: EnergyModelFit | None = None
    carbon: CarbonBreakdown | None = None
    """Carbon and cost per 1k tokens, added after the benchmark (tasks.carbon.accounting.per_1k_tokens)."""
    run_id: str | None = None
    """The variant's MLflow child run."""
    model_version: str | None = None
    """The registered model version; None when the variant was not registered (it passed no target's gates)."""

    def parts(self) -> list[_Part]:
        return [p for p in (getattr(self, name) for name in FLAT_PARTS) if p is not None]

    def metrics(self) -> dict[str, float]:
        """Every measured number by its field name, the swept families, and the carbon part's metrics."""
        out: dict[str, float] = {}
        for part in self.parts():
            out.update(part.metrics())
        if self.carbon is not None:
            out.update(self.carbon.to_metrics())
        return out

    def to_dict(self) -> dict:
        out = {"variant": self.variant, "target": self.target, "chain": self.chain, "runtime": self.runtime,
               "device": self.device, "hardware": self.hardware.to_dict()}
        for part in self.parts():
            out.update(part.to_dict())
        out.update(prompt_order_seed=self.prompt_order_seed, samples=self.samples)
        if self.carbon is not None:
            out.update(self.carbon.to_metrics(), carbon=self.carbon.to_dict())
        out.update({k: v for k, v in (("run_id", self.run_id), ("model_version", self.model_version)) if v is not None})
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "BenchmarkRecord":
        """The record `to_dict` wrote (decision.json's copies lack `correct` and `samples`: they come back empty)."""
        try:
            return cls(
                variant=d["variant"], target=d["target"], chain=d["chain"], runtime=d["runtime"], device=d["device"],
                hardware=Hardware.from_dict(d["hardware"]), energy=Energy.from_dict(d), latency=Latency.from_dict(d),
                convergence=Convergence.from_dict(d), phases=PhaseSplit.from_dict(d), batch=BatchSweep.from_dict(d),
                quality=Quality.from_dict(d), fidelity=Fidelity.from_dict(d), memory=Memory.from_dict(d),
                prompt_order_seed=d["prompt_order_seed"], samples=d.get("samples", []),
                energy_fit=EnergyModelFit.from_dict(d) if "energy_model" in d else None,
                carbon=_carbon(d["carbon"]) if d.get("carbon") else None,
                run_id=d.get("run_id"), model_version=d.get("model_version"),
            )
        except KeyError as err:
            where = f"{d.get('variant', '?')}@{d.get('target', '?')}" if isinstance(d, dict) else repr(d)[:80]
            raise GreenlaneError(f"benchmark record {where} has no {err.args[0]!r}; was it written by this "
                                 "version of greenlane?") from None


def _carbon(d: dict) -> CarbonBreakdown:
    from tasks.carbon.accounting import CarbonBreakdown

    # to_dict adds the derived `measured` and `embodied_share`; the fields are what it was built from
    return CarbonBreakdown(**{f.name: d[f.name] for f in fields(CarbonBreakdown)})
