"""Deciding which variant to promote on a target. Pure: benchmark records in, a Decision out.

Every variant of one target is checked against the gates; a missing or NaN
metric fails its gate (fail closed). The accuracy-drop gate reads, by default,
the upper end of the paired-bootstrap 95% interval of the drop (per-example
correctness of variant and baseline on the same examples), so a variant does
not pass because it got lucky on a small eval set. The baseline is the yardstick: if it is
missing or fails its own gates, nothing is promoted. Among the variants that
pass, the lowest `gco2e_per_1k_tokens` wins (ties: higher accuracy, then name).
Registry code acts on the Decision; nothing here touches MLflow.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from tasks.config import GateConfig
from tasks.errors import GreenlaneError
from tasks.measurement import stats
from tasks.measurement.record import BenchmarkRecord

BASELINE = "baseline"


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    value: float | None
    limit: float | None
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    variant: str
    passed: bool
    gco2e_per_1k_tokens: float | None
    energy_source: str
    gates: list[GateResult] = field(default_factory=list)
    accuracy_drop: dict = field(default_factory=dict)
    """`accuracy_drop` vs the baseline and its paired-bootstrap 95% bounds (`accuracy_drop_ci95_lo/hi`)."""


@dataclass(frozen=True)
class Decision:
    target: str
    champion: str | None
    reason: str
    verdicts: list[Verdict]
    mixed_energy_sources: bool
    """True when passing variants' energy came from different sources (measured vs estimate)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Variants not benchmarked on this target, with the reason (e.g. a runtime the target does not serve)."""

    def to_dict(self) -> dict:
        return asdict(self)


def _num(value) -> float | None:
    """A figure as a float; None when missing, not a number or NaN (its gate then fails closed)."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _gate(name: str, value: float | None, limit: float | None, ok) -> GateResult:
    if value is None:
        return GateResult(name, False, None, limit, "metric missing or NaN: fails closed")
    return GateResult(name, bool(ok(value, limit)), value, limit)


def accuracy_drop(record: BenchmarkRecord, baseline: BenchmarkRecord) -> dict:
    """The variant's accuracy drop vs the baseline (positive = worse) and the paired-bootstrap 95% interval.

    The interval needs both records' per-example `correct` lists over the same examples; without them the
    bounds are None (and a gate on them fails closed).
    """
    acc, base_acc = _num(record.quality.accuracy), _num(baseline.quality.accuracy)
    out = {"accuracy_drop": None if acc is None or base_acc is None else base_acc - acc,
           "accuracy_drop_ci95_lo": None, "accuracy_drop_ci95_hi": None}
    if record.quality.correct and baseline.quality.correct:
        try:
            ci = stats.accuracy_delta_ci95({"variant": baseline.variant, "correct": list(baseline.quality.correct)},
                                           {"variant": record.variant, "correct": list(record.quality.correct)})
        except GreenlaneError:
            return out  # different example sets: no paired interval
        # delta = variant - baseline; the drop is its negation, so the bounds swap
        out.update(accuracy_drop_ci95_lo=-ci["accuracy_delta_ci95_hi"], accuracy_drop_ci95_hi=-ci["accuracy_delta_ci95_lo"])
    return out


def check(record: BenchmarkRecord, baseline: BenchmarkRecord, gates: GateConfig) -> Verdict:
    """Apply every configured gate to one variant's record."""
    drop = accuracy_drop(record, baseline)
    if gates.accuracy_drop_bound == "ci95_upper":
        drop_gate, drop_value = "max_accuracy_drop_ci95_upper", drop["accuracy_drop_ci95_hi"]
    else:
        drop_gate, drop_value = "max_accuracy_drop", drop["accuracy_drop"]
    carbon = _num(record.carbon.gco2e_per_1k_tokens) if record.carbon is not None else None
    results = [
        _gate("min_accuracy", _num(record.quality.accuracy), gates.min_accuracy, lambda v, lim: v >= lim),
        _gate(drop_gate, drop_value, gates.max_accuracy_drop, lambda v, lim: v <= lim + 1e-12),
        _gate("carbon_known", carbon, None, lambda v, lim: v >= 0),
    ]
    optional = [
        ("max_latency_p95_ms", record.latency.latency_p95_ms, gates.max_latency_p95_ms, lambda v, lim: v <= lim),
        ("max_memory_mb", record.memory.peak_memory_mb, gates.max_memory_mb, lambda v, lim: v <= lim),
        ("min_top1_agreement", record.fidelity.top1_agreement, gates.min_top1_agreement, lambda v, lim: v >= lim),
    ]
    results += [_gate(name, _num(value), limit, ok) for name, value, limit, ok in optional if limit is not None]
    return Verdict(
        variant=record.variant,
        passed=all(g.passed for g in results),
        gco2e_per_1k_tokens=carbon,
        energy_source=record.energy.energy_source or "unknown",
        gates=results,
        accuracy_drop=drop,
    )


def decide(results: list[BenchmarkRecord], gates: GateConfig, target: str, expected: list[str] | None = None,
           skipped: dict[str, str] | None = None) -> Decision:
    """Pick the champion for `target` from its benchmark records (one per variant). `skipped` variants (with
    the reason) were not benchmarked here on purpose; they are carried onto the decision, never promoted."""
    skipped = dict(skipped or {})
    results = [r for r in results if r.target == target and r.variant not in skipped]
    names = [r.variant for r in results]
    if expected is not None and sorted(set(expected) - set(names)):
        missing = ", ".join(sorted(set(expected) - set(names)))
        return Decision(target, None, f"results incomplete: no record for {missing}; nothing promoted", [], False, skipped)
    baseline = next((r for r in results if r.variant == BASELINE), None)
    if baseline is None:
        return Decision(target, None, "no baseline result; nothing promoted", [], False, skipped)
    verdicts = [check(r, baseline, gates) for r in results]
    base_verdict = next(v for v in verdicts if v.variant == BASELINE)
    passing = [v for v in verdicts if v.passed]
    mixed = len({_measured(v.energy_source) for v in passing}) > 1
    if not base_verdict.passed:
        failed = ", ".join(g.gate for g in base_verdict.gates if not g.passed)
        return Decision(target, None, f"baseline failed its gates ({failed}); nothing promoted", verdicts, mixed, skipped)
    if not passing:
        return Decision(target, None, "no variant passed the gates; nothing promoted", verdicts, mixed, skipped)
    acc = {r.variant: _num(r.quality.accuracy) or 0.0 for r in results}
    best = min(passing, key=lambda v: (v.gco2e_per_1k_tokens, -acc[v.variant], v.variant))
    reason = (
        f"{best.variant} has the lowest gco2e_per_1k_tokens ({best.gco2e_per_1k_tokens:.4g}) "
        f"of the {len(passing)} variant(s) that passed all gates"
    )
    if mixed:
        reason += "; NOTE: passing variants mix measured and estimated energy, so the comparison is not like for like"
    return Decision(target, best.variant, reason, verdicts, mixed, skipped)


def _measured(source: str) -> bool:
    return not source.startswith("estimate:")


def decision_markdown(summary: dict, compare_link: str | None = None) -> str:
    """The decision record a person reads: per target, every variant, every gate, and why the champion won.
    `compare_link` (built by tracking) opens the variants' runs side by side."""
    lines = [f"# greenlane decision for {summary['registered_model']} ({summary['dag_run_id']})", ""]
    if compare_link:
        n = sum(1 for r in summary["results"] if r.get("run_id"))
        lines += [f"[Compare all {n} variant runs side by side]({compare_link})", ""]
    results = {(r.variant, r.target): r for r in map(BenchmarkRecord.from_dict, summary["results"])}
    for target, entry in summary["targets"].items():
        decision = entry["decision"]
        lines += [f"## target `{target}`", "", f"**{decision['reason']}**", ""]
        if entry.get("promoted"):
            p = entry["promoted"]
            lines += [f"Alias `{p['alias']}` -> version {p['version']} (previous: {p['previous'] or 'none'}).", ""]
        lines += ["| variant | runtime | gCO2e/1k tok | energy J/1k tok | energy source | accuracy | drop vs baseline "
                  "[95% CI] | p95 ms | gates |", "|---|---|---|---|---|---|---|---|---|"]
        for v in sorted(decision["verdicts"], key=lambda v: (v["gco2e_per_1k_tokens"] is None, v["gco2e_per_1k_tokens"] or 0)):
            r = results[(v["variant"], target)]  # a verdict is made from a record
            gates = ", ".join(
                f"{g['gate']} {'ok' if g['passed'] else 'FAIL'}" + (f" ({g['value']:.4g} vs {g['limit']})" if g["value"] is not None and g["limit"] is not None else "")
                for g in v["gates"]
            )
            star = " (champion)" if v["variant"] == decision["champion"] else ""
            lines.append(
                f"| {v['variant']}{star} | {r.runtime} | {_fmt(v['gco2e_per_1k_tokens'])} | "
                f"{_fmt(r.energy.energy_j_per_1k_tokens)} | "
                f"{v['energy_source']} | {_fmt(r.quality.accuracy)} | {_drop(v.get('accuracy_drop') or {})} | "
                f"{_fmt(r.latency.latency_p95_ms)} | {gates} |"
            )
        for variant, why in (decision.get("skipped") or {}).items():
            lines.append(f"| {variant} | skipped: {why} | | | | | | | |")
        lines.append("")
    return "\n".join(lines)


def _drop(drop: dict) -> str:
    if drop.get("accuracy_drop_ci95_lo") is None:
        return _fmt(drop.get("accuracy_drop"))
    return f"{drop['accuracy_drop']:+.3f} [{drop['accuracy_drop_ci95_lo']:+.3f}, {drop['accuracy_drop_ci95_hi']:+.3f}]"


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"
