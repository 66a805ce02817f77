"""The typed benchmark record: its JSON (result.json, decision.json) and the MLflow metrics derived from its fields."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import pytest
from records import LOGGED_BEFORE, make_record

from tasks.errors import GreenlaneError
from tasks.measurement.record import BatchSweep, BenchmarkRecord, EnergyModelFit, Hardware, Latency, Quality

@pytest.fixture
def full() -> BenchmarkRecord:
    """Every part filled, the optional ones too, as the pipeline leaves a record before promotion."""
    rec = make_record("bf16", 0.4, 0.75, top1_agreement=0.97, correct=[1, 0, 1, 1],
                      batch=BatchSweep({1: 60.0, 4: 150.0}, {1: 0.09, 4: 0.05}, 4, 4),
                      energy_fit=EnergyModelFit(energy_model={"energy_j": {"form": "linear", "r2": 0.99}},
                                                energy_model_source="rapl", energy_model_cells=10,
                                                energy_model_cv_mdape=0.04, energy_model_r2=0.99,
                                                runtime_model_cv_mdape=0.03, runtime_model_r2=0.98),
                      run_id="abc123", model_version="7")
    carbon = replace(rec.carbon, usd_per_1k_tokens=0.002)
    hardware = replace(rec.hardware, worker_report={"hostname": "box", "gpus": [], "detected_profile": None},
                       profile_used="cpu", profile_from="config (nothing detected)")
    return replace(rec, carbon=carbon, hardware=hardware,
                   quality=replace(rec.quality, lm_eval={"lm_eval/sentiment_mc/acc": 0.5, "lm_eval/sentiment_mc/n": 4}))


def test_json_round_trip(full):
    d = json.loads(json.dumps(full.to_dict()))
    assert BenchmarkRecord.from_dict(d) == full


def test_json_keeps_the_flat_keys_readers_use(full):
    d = full.to_dict()
    # what the report, routing, plots and decision.md read
    assert d["energy_j_per_1k_tokens"] == 90.0 and d["energy_source"] == "estimate:codecarbon-cpu-load"
    assert d["latency_p95_ms"] == 500.0 and d["accuracy"] == 0.75 and d["gco2e_per_1k_tokens"] == 0.4
    assert d["tokens_per_s_bs4"] == 150.0 and d["j_per_token_bs4"] == 0.05 and d["lm_eval/sentiment_mc/acc"] == 0.5
    assert d["energy"]["energy_j"] == 0.9 and d["energy"]["measured"] is False  # the reading, as EnergyReading writes it
    assert d["carbon"]["embodied_share"] == 0.0 and d["carbon"]["region"] == "CISO"
    assert d["hardware"]["hostname"] == "box" and d["hardware"]["profile_used"] == "cpu"
    assert d["energy_model"]["energy_j"]["form"] == "linear" and d["run_id"] == "abc123" and d["model_version"] == "7"


def test_decision_json_copy_reads_back_without_examples(full):
    brief = {k: v for k, v in full.to_dict().items() if k not in ("correct", "samples")}  # as promote writes it
    back = BenchmarkRecord.from_dict(brief)
    assert back.quality.correct == [] and back.samples == []
    assert back == replace(full, quality=replace(full.quality, correct=[]), samples=[])


def test_a_record_without_carbon_or_version_omits_them(full):
    d = replace(full, carbon=None, run_id=None, model_version=None, energy_fit=None).to_dict()
    assert not {"carbon", "gco2e_per_1k_tokens", "run_id", "model_version", "energy_model"} & set(d)
    assert BenchmarkRecord.from_dict(d).carbon is None


def test_metrics_are_the_numeric_fields(full):
    metrics = full.metrics()
    swept = {"tokens_per_s_bs1", "tokens_per_s_bs4", "j_per_token_bs1", "j_per_token_bs4", "lm_eval/sentiment_mc/acc",
             "lm_eval/sentiment_mc/n"}
    assert set(metrics) == set(LOGGED_BEFORE) | swept  # the same names as before: no more (see record.DETAIL), no fewer
    assert metrics["latency_p95_ms"] == 500.0 and metrics["gco2e_per_1k_tokens"] == 0.4
    # settings, flags, labels and per-example lists are not metrics
    assert not {"ci_target", "prompt_order_seed", "ci_converged", "energy_measured", "energy_source", "correct"} & set(metrics)
    assert all(isinstance(v, float) for v in metrics.values())
    # a figure that is None (no fidelity reference) is left out, not logged as NaN
    assert "kl_to_baseline" not in replace(full, fidelity=replace(full.fidelity, kl_to_baseline=None)).metrics()


def test_a_new_numeric_field_is_a_metric_without_touching_tracking():
    @dataclass(frozen=True)
    class WithQueue(Latency):
        queue_wait_ms: float = 0.0
        queue_label: str = "default"

    assert WithQueue.metric_names()[-1] == "queue_wait_ms" and "queue_label" not in WithQueue.metric_names()
    assert "perplexity" in Quality.metric_names() and "correct" not in Quality.metric_names()
    assert "accuracy_ci95_lo" not in Quality.metric_names()  # in the JSON, not logged (record.DETAIL)


def test_hardware_keeps_the_workers_report_beside_the_config():
    hw = Hardware.from_dict({"configured": "jetson-orin", "machine": "aarch64", "processor": "ARMv8", "threads": 4,
                             "hostname": "orin", "detected_profile": "jetson-orin", "profile_used": "jetson-orin",
                             "profile_from": "detected"})
    assert hw.worker_report == {"hostname": "orin", "detected_profile": "jetson-orin"} and hw.profile_from == "detected"
    assert Hardware.from_dict(hw.to_dict()) == hw


def test_a_record_missing_a_field_names_it(full):
    d = full.to_dict()
    del d["latency_p95_ms"]
    with pytest.raises(GreenlaneError, match=r"bf16@cpu has no 'latency_p95_ms'"):
        BenchmarkRecord.from_dict(d)
