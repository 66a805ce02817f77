"""promotion.decide on tables of numbers: pure, no MLflow."""

import math

from tasks.config import GateConfig
from tasks.promotion import decide

GATES = GateConfig(max_accuracy_drop=0.01, min_accuracy=0.5, max_latency_p95_ms=1000)


def rec(variant, g, acc, p95=500.0, target="cpu", source="estimate:codecarbon-cpu-load"):
    return {"variant": variant, "target": target, "gco2e_per_1k_tokens": g, "accuracy": acc,
            "latency_p95_ms": p95, "energy_source": source}


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
    md = decision_markdown({"registered_model": "m", "dag_run_id": "r1", "results": rows,
                            "targets": {"cpu": {"decision": asdict(d), "promoted": None}}})
    assert "bf16 (champion)" in md and "max_accuracy_drop FAIL" in md and md.count("\n| ") == 4
