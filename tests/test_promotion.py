"""promotion.decide on tables of numbers (benchmark records built by tests/records.py): pure, no MLflow."""

import math

from records import make_record

from tasks.config import GateConfig
from tasks.promotion import decide

# The point drop here; the confidence-bound gate has its own tests below (it needs per-example correctness).
GATES = GateConfig(max_accuracy_drop=0.01, min_accuracy=0.5, max_latency_p95_ms=1000, accuracy_drop_bound="point")


def rec(variant, g, acc, p95=500.0, target="cpu", source="estimate:codecarbon-cpu-load", **kw):
    return make_record(variant, g, acc, p95, target=target, source=source, **kw)


def test_lowest_carbon_passing_variant_wins():
    d = decide([rec("baseline", 1.0, 0.80), rec("bf16", 0.6, 0.80), rec("nf4", 0.3, 0.70)], GATES, "cpu")
    assert d.champion == "bf16"
    nf4 = next(v for v in d.verdicts if v.variant == "nf4")
    assert not nf4.passed and [g.gate for g in nf4.gates if not g.passed] == ["max_accuracy_drop"]


def test_drop_exactly_at_the_limit_passes():
    d = decide([rec("baseline", 1.0, 0.80), rec("int8", 0.5, 0.79)], GATES, "cpu")
    assert d.champion == "int8"


def test_baseline_best_is_promoted():
    d = decide([rec("baseline", 0.4, 0.80), rec("bf16", 0.6, 0.80)], GATES, "cpu")
    assert d.champion == "baseline"


def test_latency_gate():
    d = decide([rec("baseline", 1.0, 0.8), rec("int8", 0.1, 0.8, p95=5000)], GATES, "cpu")
    assert d.champion == "baseline"


def test_ties_break_on_accuracy_then_name():
    d = decide([rec("baseline", 1.0, 0.80), rec("b", 0.5, 0.795), rec("a", 0.5, 0.80)], GATES, "cpu")
    assert d.champion == "a"


def test_nan_metric_fails_closed():
    d = decide([rec("baseline", 1.0, 0.8), rec("bf16", math.nan, 0.8), rec("int8", 0.2, None)], GATES, "cpu")
    assert d.champion == "baseline"
    assert all(not v.passed for v in d.verdicts if v.variant != "baseline")


def test_nothing_promoted_when_baseline_fails():
    d = decide([rec("baseline", 1.0, 0.40), rec("bf16", 0.5, 0.40)], GATES, "cpu")
    assert d.champion is None and "baseline failed" in d.reason


def test_nothing_promoted_when_results_incomplete_or_baseline_missing():
    assert decide([rec("bf16", 0.5, 0.8)], GATES, "cpu").champion is None
    d = decide([rec("baseline", 1.0, 0.8)], GATES, "cpu", expected=["baseline", "bf16"])
    assert d.champion is None and "incomplete" in d.reason


def test_only_the_named_target_is_considered():
    rows = [rec("baseline", 1.0, 0.8), rec("bf16", 0.1, 0.8, target="gpu"), rec("baseline", 0.2, 0.8, target="gpu")]
    assert decide(rows, GATES, "cpu").champion == "baseline"
    assert decide(rows, GATES, "gpu").champion == "bf16"


def test_mixed_energy_sources_are_flagged():
    d = decide([rec("baseline", 1.0, 0.8, source="rapl"), rec("bf16", 0.5, 0.8)], GATES, "cpu")
    assert d.mixed_energy_sources and "not like for like" in d.reason


def test_decision_markdown_lists_every_variant_and_gate():
    from dataclasses import asdict

    from tasks.promotion import decision_markdown

    rows = [rec("baseline", 1.0, 0.80), rec("bf16", 0.6, 0.80), rec("nf4", 0.3, 0.70)]
    d = decide(rows, GATES, "cpu")
    md = decision_markdown({"registered_model": "m", "dag_run_id": "r1", "results": [r.to_dict() for r in rows],
                            "targets": {"cpu": {"decision": asdict(d), "promoted": None}}})
    assert "bf16 (champion)" in md and "max_accuracy_drop FAIL" in md and md.count("\n| ") == 4


# --- the accuracy-drop gate on the upper bound of its paired 95% interval (the default) ---

CI_GATES = GateConfig(max_accuracy_drop=0.02, min_accuracy=0.5)


def scored(variant, g, correct, **kw):
    return rec(variant, g, sum(correct) / len(correct), correct=correct, **kw)


def test_same_accuracy_by_luck_fails_the_confidence_bound():
    base = [1] * 70 + [0] * 30
    lucky = [0] * 20 + [1] * 50 + [1] * 20 + [0] * 10  # also 70/100, but right on different examples
    d = decide([scored("baseline", 1.0, base), scored("nf4", 0.3, lucky)], CI_GATES, "cpu")
    nf4 = next(v for v in d.verdicts if v.variant == "nf4")
    assert nf4.accuracy_drop["accuracy_drop"] == 0.0 and nf4.accuracy_drop["accuracy_drop_ci95_hi"] > 0.05
    assert [g.gate for g in nf4.gates if not g.passed] == ["max_accuracy_drop_ci95_upper"]
    assert d.champion == "baseline"


def test_agreeing_variant_passes_the_confidence_bound():
    base = [1] * 280 + [0] * 120
    near = [1] * 279 + [0] * 121  # one example of 400 lost, the rest identical: the interval is tight
    d = decide([scored("baseline", 1.0, base), scored("int8", 0.5, near)], CI_GATES, "cpu")
    int8 = next(v for v in d.verdicts if v.variant == "int8")
    lo, hi = int8.accuracy_drop["accuracy_drop_ci95_lo"], int8.accuracy_drop["accuracy_drop_ci95_hi"]
    assert lo == 0.0 and 0.0025 < hi <= 0.02
    assert d.champion == "int8"


def test_confidence_bound_without_per_example_scores_fails_closed():
    d = decide([scored("baseline", 1.0, [1, 0] * 50), rec("bf16", 0.5, 0.5)], CI_GATES, "cpu")
    bf16 = next(v for v in d.verdicts if v.variant == "bf16")
    gate = next(g for g in bf16.gates if g.gate == "max_accuracy_drop_ci95_upper")
    assert not gate.passed and "fails closed" in gate.note and d.champion == "baseline"


def test_memory_and_fidelity_gates():
    gates = GateConfig(max_accuracy_drop=0.05, accuracy_drop_bound="point", max_memory_mb=7000, min_top1_agreement=0.9)
    rows = [rec("baseline", 1.0, 0.8, peak_memory_mb=6000, top1_agreement=1.0),
            rec("big", 0.2, 0.8, peak_memory_mb=9000, top1_agreement=0.99),
            rec("drifted", 0.3, 0.8, peak_memory_mb=900, top1_agreement=0.7),
            rec("unknown", 0.1, 0.8, peak_memory_mb=None, top1_agreement=0.95)]
    d = decide(rows, gates, "cpu")
    failed = {v.variant: [g.gate for g in v.gates if not g.passed] for v in d.verdicts}
    assert failed == {"baseline": [], "big": ["max_memory_mb"], "drifted": ["min_top1_agreement"], "unknown": ["max_memory_mb"]}
    assert d.champion == "baseline"


def test_all_fail_promotes_nothing():
    d = decide([rec("baseline", 1.0, 0.8), rec("nf4", 0.3, 0.2), rec("int8", 0.5, 0.6)], GATES, "cpu")
    assert d.champion == "baseline"  # the baseline passes its own gates, so it holds
    d = decide([rec("baseline", 1.0, 0.8, p95=9000), rec("nf4", 0.3, 0.8, p95=9000)], GATES, "cpu")
    assert d.champion is None and "baseline failed" in d.reason


def test_target_gate_overrides_apply_to_that_target_only():
    from tasks.config import load_config

    cfg = load_config(None, ["targets.cpu.gates={max_memory_mb: 7000, min_top1_agreement: 0.9}"])
    assert cfg.gates_for("cpu").max_memory_mb == 7000 and cfg.gates_for("cpu").min_top1_agreement == 0.9
    assert cfg.gates.max_memory_mb is None and cfg.gates_for("cpu").min_accuracy == cfg.gates.min_accuracy


def test_skipped_variants_are_carried_onto_the_decision_and_never_promoted():
    from tasks.config import GateConfig
    from tasks.promotion import decide, decision_markdown

    base = rec("baseline", 1.0, 0.7, target="gpu", source="nvml")
    onnx = rec("onnx-int4", 0.1, 0.7, target="gpu", source="nvml")  # a stray record of a skipped variant
    skipped = {"onnx-int4": "runs in onnxruntime-genai, which target gpu does not serve"}
    decision = decide([base, onnx], GateConfig(max_accuracy_drop=1.0, accuracy_drop_bound="point"), "gpu",
                      expected=["baseline"], skipped=skipped)
    assert decision.champion == "baseline" and decision.skipped == skipped
    summary = {"registered_model": "m", "dag_run_id": "r", "results": [base.to_dict()],
               "targets": {"gpu": {"decision": decision.to_dict(), "promoted": None}}}
    assert "| onnx-int4 | skipped: runs in onnxruntime-genai" in decision_markdown(summary)


def test_gates_read_the_records_parts():
    from dataclasses import replace

    base, bf16 = rec("baseline", 1.0, 0.8), rec("bf16", 0.5, 0.8)
    assert decide([base, bf16], GATES, "cpu").champion == "bf16"
    slow = replace(bf16, latency=replace(bf16.latency, latency_p95_ms=5000.0))
    d = decide([base, slow], GATES, "cpu")
    assert d.champion == "baseline"
    assert [g.gate for v in d.verdicts if v.variant == "bf16" for g in v.gates if not g.passed] == ["max_latency_p95_ms"]
    # no carbon part (the pipeline adds it after the benchmark): the carbon gate fails closed
    d = decide([base, replace(bf16, carbon=None)], GATES, "cpu")
    verdict = next(v for v in d.verdicts if v.variant == "bf16")
    assert d.champion == "baseline" and verdict.gco2e_per_1k_tokens is None
    assert [g.gate for g in verdict.gates if not g.passed] == ["carbon_known"]
