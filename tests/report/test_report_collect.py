"""Which variants become routing candidates, and the report's default workload stays inside the fits."""

from __future__ import annotations

import dataclasses

from tasks.energy_model import EnergyModel, save_models
from tasks.report.build import report_workload
from tasks.report.collect import candidate_records
from tasks.routing.candidates import from_run_records


def model(target, tin_range=(4, 64), tout_range=(2, 16)):
    return EnergyModel(target=target, form="fixed-linear", weighting="relative", terms=["1", "tout"],
                       coefficients=[0.1, 0.01], r2=1.0, cv_mdape=0.01, min_prediction=0.1, n_points=10,
                       tin_range=list(tin_range), tout_range=list(tout_range))


def rec(variant, passed, path):
    return {"variant": variant, "target": "cpu", "name": f"{variant}@cpu", "passed": passed, "accuracy": 0.7,
            "energy_source": "estimate:codecarbon-cpu-load", "energy_model_source": "rapl",
            "energy_model_path": path, "carbon": {"region": "QC", "hardware": "cpu", "pue": 1.2, "lifetime_years": 4}}


def test_failing_variants_and_variants_without_a_model_are_not_candidates(tmp_path):
    path = str(save_models({"energy_j": model("energy_j"), "runtime_s": model("runtime_s")}, tmp_path / "m.json"))
    records = [rec("baseline", True, path), rec("nf4", False, path), rec("bf16", True, None)]
    assert [r["name"] for r in candidate_records(records)] == ["baseline@cpu"]
    assert [r["name"] for r in candidate_records(records, include_failing=True)] == ["baseline@cpu", "nf4@cpu"]
    (cand,) = from_run_records(candidate_records(records))
    # the model's own meter is the source, and the target's place prices its carbon
    assert (cand.energy_source, cand.region, cand.pue, cand.lifetime_years) == ("rapl", "QC", 1.2, 4)


def test_report_workload_interpolates(tmp_path):
    path = str(save_models({"energy_j": model("energy_j"), "runtime_s": model("runtime_s")}, tmp_path / "m.json"))
    (cand,) = from_run_records(candidate_records([rec("baseline", True, path)]))
    narrow = dataclasses.replace(cand, name="other", energy=model("energy_j", (8, 32), (4, 8)))
    w = report_workload([cand, narrow], n=500)
    assert w.tin.min() >= 8 and w.tin.max() <= 32 and w.tout.min() >= 4 and w.tout.max() <= 8


def test_a_run_without_energy_grid_still_has_every_section(tmp_path):
    from tasks.report.build import build

    records = [{**rec("baseline", True, None), "gco2e_per_1k_tokens": 0.1, "gco2e_operational_per_1k_tokens": 0.09,
                "gco2e_embodied_per_1k_tokens": 0.01}]
    decision = {"registered_model": "m", "targets": {"cpu": {"decision": {
        "target": "cpu", "champion": "baseline", "reason": "only one",
        "verdicts": [{"variant": "baseline", "passed": True, "gates": []}]}}}}
    run = {"run_id": "r1", "run_name": "optimize x", "start_time": 0}
    page = build({"run": run, "decision": decision, "records": records}, tmp_path)["html"].read_text()
    for section in ("variants", "pareto", "carbon", "energy-models", "whatif", "routing"):
        assert f'<section id="{section}">' in page
    assert "no routing candidates" in page and "no energy-model fits in this run" in page
