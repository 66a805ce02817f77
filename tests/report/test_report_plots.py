"""The plot functions take plain records, write a PNG, and always say where the energy came from."""

from __future__ import annotations

import pytest

from tasks.errors import GreenlaneError
from tasks.report import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def record(variant, target, g, acc, source="rapl", emb_share=0.2):
    return {"variant": variant, "target": target, "accuracy": acc, "energy_source": source,
            "gco2e_per_1k_tokens": g, "gco2e_operational_per_1k_tokens": g * (1 - emb_share),
            "gco2e_embodied_per_1k_tokens": g * emb_share}


RECORDS = [record("baseline", "cpu", 0.12, 0.71), record("bf16", "cpu", 0.09, 0.71),
           record("bnb-nf4", "cpu", 0.30, 0.68), record("baseline", "gpu", 0.05, 0.71, "nvml"),
           record("bf16", "gpu", 0.03, 0.70, "nvml")]


def decision_for(target, champion, failing=()):
    names = [r["variant"] for r in RECORDS if r["target"] == target]
    return {"target": target, "champion": champion, "reason": "test",
            "verdicts": [{"variant": v, "passed": v not in failing, "gates": []} for v in names]}


SUMMARY = {"targets": {"cpu": {"decision": decision_for("cpu", "bf16", failing=("bnb-nf4",))},
                       "gpu": {"decision": decision_for("gpu", "bf16")}}}


def test_pareto_plot_writes_a_png(tmp_path):
    out = plots.pareto_plot(RECORDS, SUMMARY, tmp_path / "p.png")
    assert out.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("form", [
    SUMMARY,
    {"cpu": decision_for("cpu", "bf16", failing=("bnb-nf4",)), "gpu": decision_for("gpu", "bf16")},
])
def test_decision_forms_are_read_alike(form):
    passed, champions = plots.verdicts(form)
    assert champions == {"cpu": "bf16", "gpu": "bf16"}
    assert passed[("bnb-nf4", "cpu")] is False and passed[("bf16", "gpu")] is True


def test_a_single_decision_dict_is_accepted(tmp_path):
    assert plots.verdicts(decision_for("cpu", "bf16"))[1] == {"cpu": "bf16"}
    plots.pareto_plot([r for r in RECORDS if r["target"] == "cpu"], decision_for("cpu", "bf16"), tmp_path / "one.png")


def test_carbon_breakdown_plot_writes_a_png(tmp_path):
    assert plots.carbon_breakdown_plot(RECORDS, tmp_path / "c.png").read_bytes().startswith(PNG_MAGIC)


def test_source_note_names_the_source_and_flags_a_mix():
    assert plots.source_note(RECORDS[:3]) == "energy source: rapl"
    mixed = plots.source_note(RECORDS[:1] + [record("x", "cpu", 1, 0.5, "estimate:codecarbon-cpu-load")])
    assert mixed.startswith("MIXED energy sources: estimate:codecarbon-cpu-load, rapl")


def test_energy_fit_and_routing_plots(tmp_path):
    fit = {"name": "bf16@cpu", "form": "kv-cache", "cv_mdape": 0.05, "energy_source": "rapl",
           "measured_j": [1.0, 2.0, 4.0], "predicted_j": [1.1, 1.9, 4.2]}
    assert plots.energy_fit_plot([fit], tmp_path / "f.png").is_file()
    point = {"total_energy_j": 10.0, "total_gco2e": 1.0, "mean_runtime_s": 0.5, "mean_accuracy": 0.7}
    curve = {"objective": "energy", "workload": {"queries": 3}, "energy_sources": {"a": "rapl"},
             "curve": [{"zeta": 0.0, **point}, {"zeta": 1.0, **point, "total_energy_j": 5.0}],
             "baselines": {"round-robin": point, "single:a": point}}
    assert plots.routing_curves_plot(curve, tmp_path / "r.png").is_file()


def test_nothing_to_plot_is_a_clear_error(tmp_path):
    with pytest.raises(GreenlaneError, match="no record has both gco2e_per_1k_tokens and accuracy"):
        plots.pareto_plot([{"variant": "a", "target": "cpu"}], None, tmp_path / "x.png")
