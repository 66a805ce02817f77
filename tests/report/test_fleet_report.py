"""The fleet report and store-backed routing on a real tiny pipeline run (Airflow dag.test, SQLite MLflow).

One module-scoped `greenlane run` of the tiny random Llama with a 5 x 2 token grid, so every variant logs
an energy_model.json and energy_grid.csv; the report is then built from that store, rendered by headless
Chromium, and its plots are read back from the parent run's artifacts.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from mlflow import MlflowClient

SECTIONS = ("variants", "pareto", "carbon", "energy-models", "whatif", "routing")
RUN = [
    "--set", "eval.limit=6", "--set", "eval.perplexity_tokens=64", "--set", "benchmark.prompts=2",
    "--set", "benchmark.max_new_tokens=4", "--set", "benchmark.repeats=1", "--set", "variants=[baseline, bf16]",
    "--set", "gates.min_accuracy=0", "--set", "gates.max_accuracy_drop=1",
    "--set", "benchmark.energy_grid={tin: [4, 8, 16, 32, 64], tout: [2, 4]}",
]


@pytest.fixture(scope="module")
def store(cli, tiny_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("report-home")
    env = {"GREENLANE_HOME": str(home)}
    out = cli("run", "--set", f"base_model={tiny_dir}", *RUN, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    return {"home": home, "env": env, "base": ["--set", f"base_model={tiny_dir}"]}


@pytest.fixture(scope="module")
def report(cli, store, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("report")
    out = cli("report", *store["base"], "--out", str(out_dir), "--json", env=store["env"])
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout)


def test_report_is_self_contained(report):
    page = open(report["html"]).read()
    assert not re.search(r"""(src|href)=["']?(https?:|file:|//)""", page)  # nothing fetched: opens offline
    assert page.count('src="data:image/png;base64,') == 4  # pareto, carbon, energy fits, routing
    assert "estimate:codecarbon-cpu-load" in page or "rapl" in page  # the energy source is stated


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium not installed (CI installs it)")
def test_report_renders_in_chromium_with_every_section(report):
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--virtual-time-budget=15000", "--dump-dom", f"file://{report['html']}"],
        capture_output=True, text=True, timeout=180,
    ).stdout
    for section in SECTIONS:
        assert f'<section id="{section}">' in dom, section
    assert "bf16" in dom and "baseline" in dom and "champion" in dom
    assert dom.count("<img") == 4


def test_report_plots_are_logged_to_the_parent_run(report, store):
    c = MlflowClient(f"sqlite:///{store['home'] / 'mlflow.db'}")
    logged = {a.path for a in c.list_artifacts(report["run_id"], "report")}
    assert {"report/report.html", "report/pareto.png", "report/carbon_breakdown.png",
            "report/energy_model_fits.png", "report/routing_curves.png"} <= logged


def test_route_takes_candidates_from_the_store(cli, store):
    out = cli("route", *store["base"], "--workload", "synthetic:300", "--zeta", "1", "--json", env=store["env"])
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout)
    assert sorted(c["name"] for c in result["candidates"]) == ["baseline@cpu", "bf16@cpu"]
    assert set(result["energy_sources"].values()) <= {"estimate:codecarbon-cpu-load", "rapl"}
    routed, singles = result["routed"], [b for k, b in result["baselines"].items() if k.startswith("single:")]
    assert routed["total_energy_j"] <= min(b["total_energy_j"] for b in singles) + 1e-9  # zeta=1: least energy


def test_report_on_a_variant_run_says_to_pass_the_parent(cli, store, report, tmp_path):
    c = MlflowClient(f"sqlite:///{store['home'] / 'mlflow.db'}")
    child = c.search_runs([c.get_run(report["run_id"]).info.experiment_id], filter_string="tags.variant = 'bf16'")[0]
    out = cli("report", *store["base"], "--run", child.info.run_id, "--out", str(tmp_path), env=store["env"])
    assert out.returncode == 2
    assert "is a variant run (bf16@cpu); pass its parent" in out.stderr
