"""`greenlane run` on the tiny model: a real Airflow dag.test() on a SQLite DB it migrates itself, a real
SQLite MLflow store; the runs, registered versions and alias are then read back from MLflow."""

import json
import subprocess
from urllib.parse import quote

import pytest
from mlflow import MlflowClient

FAST = [
    "--set", "eval.limit=6", "--set", "eval.perplexity_tokens=64",
    "--set", "benchmark.prompts=2", "--set", "benchmark.max_new_tokens=4", "--set", "benchmark.repeats=1",
    "--set", "variants=[baseline, bf16, bnb-nf4]",
    "--set", "gates.min_top1_agreement=null",  # a random tiny model's near-flat logits flip under any rounding
]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("greenlane-home")


@pytest.fixture(scope="module")
def first_run(cli, tiny_dir, home):
    # Gates loose enough that the random tiny model passes: this test is about the plumbing.
    out = cli("run", "--set", f"base_model={tiny_dir}", *FAST, "--set", "gates.min_accuracy=0",
              "--set", "gates.max_accuracy_drop=1", env={"GREENLANE_HOME": str(home)})
    assert out.returncode == 0, out.stderr[-4000:]
    return out


def test_runs_versions_and_alias_land_in_mlflow(first_run, home):
    c = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = c.get_experiment_by_name("greenlane-tiny-llama")
    runs = c.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1, "this test must run before any other run lands in the store"
    assert sorted(r.info.run_name for r in children) == ["baseline@cpu", "bf16@cpu", "bnb-nf4@cpu"]
    for r in children:
        assert r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert r.data.tags["energy_source"]  # every energy figure says where it came from
        for key in ("energy_j_per_1k_tokens", "gco2e_per_1k_tokens", "latency_p50_ms", "latency_p95_ms", "ttft_ms",
                    "tpot_ms", "tokens_per_s", "accuracy", "perplexity", "model_size_mb"):
            assert key in r.data.metrics, (r.info.run_name, key)
    versions = c.search_model_versions("name='tiny-llama'")
    assert len(versions) == 3
    champion = c.get_model_version_by_alias("tiny-llama", "champion-cpu")
    assert c.get_model_version_by_alias("tiny-llama", "champion").version == champion.version
    # The alias points at the lowest-carbon variant among those that passed (all pass these loose gates).
    by_run = {r.info.run_id: r for r in children}
    lowest = min(children, key=lambda r: r.data.metrics["gco2e_per_1k_tokens"])
    assert by_run[champion.run_id].info.run_id == lowest.info.run_id
    assert "champion" in first_run.stderr.lower() or "version" in first_run.stderr


def test_champion_command_reports_it(cli, first_run, tiny_dir, home):
    out = cli("champion", "--json", "--set", f"base_model={tiny_dir}", env={"GREENLANE_HOME": str(home)})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)["cpu"]
    assert report["registered_model"] == "tiny-llama" and report["alias"] == "champion-cpu"
    assert report["metrics"]["gco2e_per_1k_tokens"] > 0 and report["baseline_metrics"]["accuracy"] >= 0


def test_impossible_gates_promote_nothing_and_exit_3(cli, tiny_dir, home):
    before = MlflowClient(f"sqlite:///{home / 'mlflow.db'}").get_model_version_by_alias("tiny-llama", "champion-cpu")
    out = cli("run", "--set", f"base_model={tiny_dir}", *FAST, "--set", "gates.min_accuracy=1.0",
              "--set", "gates.max_latency_p95_ms=0.001", env={"GREENLANE_HOME": str(home)})
    assert out.returncode == 3, out.stderr[-4000:]
    assert "nothing promoted" in out.stderr
    after = MlflowClient(f"sqlite:///{home / 'mlflow.db'}").get_model_version_by_alias("tiny-llama", "champion-cpu")
    assert after.version == before.version


def test_carbon_metrics_follow_from_the_logged_energy(first_run, home):
    c = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = c.get_experiment_by_name("greenlane-tiny-llama")
    for r in c.search_runs([exp.experiment_id], filter_string="tags.variant != ''"):
        m = r.data.metrics
        assert r.data.params["region"] == "CISO"  # default target region: 262 gCO2e/kWh, PUE 1.0
        assert m["gco2e_operational_per_1k_tokens"] == pytest.approx(m["energy_j_per_1k_tokens"] / 3.6e6 * 262, rel=1e-9)
        assert m["gco2e_per_1k_tokens"] == pytest.approx(
            m["gco2e_operational_per_1k_tokens"] + m["gco2e_embodied_per_1k_tokens"], rel=1e-9)
        assert r.data.tags["energy_kind"] in ("measured", "estimate")


def test_whatif_ranks_regions_for_the_champion(cli, first_run, tiny_dir, home):
    c = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = c.get_experiment_by_name("greenlane-tiny-llama")
    parents = [r for r in c.search_runs([exp.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    parent = min(parents, key=lambda r: r.info.start_time)  # the run that promoted (a later one may have failed gates)
    logged = {a.path for a in c.list_artifacts(parent.info.run_id, "whatif/cpu")}
    assert {"whatif/cpu/whatif.png", "whatif/cpu/whatif.txt"} <= logged

    out = cli("whatif", "--champion", "--set", f"base_model={tiny_dir}", "--json", env={"GREENLANE_HOME": str(home)})
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["region"] for r in rows] == ["QC", "CISO", "PACE"]  # cleanest grid first for the same work
    assert all(r["energy_source"] == rows[0]["energy_source"] for r in rows)


def _first_parent(c, exp_id):
    parents = [r for r in c.search_runs([exp_id]) if "mlflow.parentRunId" not in r.data.tags]
    return min(parents, key=lambda r: r.info.start_time)


def test_champion_loads_from_the_registry_and_generates(first_run, home):
    from tasks.tracking.serving import load_servable

    model = load_servable(f"sqlite:///{home / 'mlflow.db'}", "models:/tiny-llama@champion-cpu")
    out = model.predict(["Name a colour."], params={"max_new_tokens": 6})
    # the random tiny model's first greedy tokens are newlines: the text is non-empty, not necessarily words
    assert isinstance(out, list) and len(out) == 1 and isinstance(out[0], str) and out[0]
    # params are honoured (MLflow used to drop them without a signature and generate its default 64 tokens)
    ids = model.unwrap_python_model().runtime.tokenizer(out[0], add_special_tokens=False)["input_ids"]
    assert len(ids) <= 6


def test_runs_carry_gates_provenance_and_system_metrics(first_run, home):
    c = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = c.get_experiment_by_name("greenlane-tiny-llama")
    parent = _first_parent(c, exp.experiment_id)
    from tasks.config import REPO_ROOT
    from tasks.pipeline import data_version, git_commit

    sha = parent.data.tags["git_commit"]  # HEAD may have moved since the run; the commit must still exist
    if git_commit() == "unknown":  # not a git checkout
        assert sha == "unknown"
    else:
        assert subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=REPO_ROOT).returncode == 0
    assert parent.data.tags["data_sha256"] == data_version()
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("# greenlane decision") and "Compare all 3 variant runs" in note
    logged = {a.path for a in c.list_artifacts(parent.info.run_id, "plots")}
    assert logged == {"plots/pareto.png", "plots/carbon_breakdown.png"}
    children = [r for r in c.search_runs([exp.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")]
    assert sorted(r.data.tags["gate"] for r in children).count("champion") == 1
    for r in children:
        m = r.data.metrics
        assert m["accuracy_drop_ci95_lo"] <= m["accuracy_drop"] <= m["accuracy_drop_ci95_hi"]
        assert m["peak_memory_mb"] > 0 and any(k.startswith("system/") for k in m), sorted(m)
        assert {a.path for a in c.list_artifacts(r.info.run_id)} >= {"benchmark.json", "samples.json", "model"}


def test_mlflow_ui_shows_the_variant_runs_and_the_decision(first_run, home, tmp_path):
    """A real `mlflow server` on 127.0.0.1 over the store, read by headless Chromium."""
    import shutil

    from browser import dump_dom, mlflow_server  # tests/browser.py

    if shutil.which("chromium") is None:
        pytest.skip("Debian chromium is not installed (make system-deps installs it; CI runs it)")
    c = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = c.get_experiment_by_name("greenlane-tiny-llama")
    parent = _first_parent(c, exp.experiment_id)
    with mlflow_server(f"sqlite:///{home / 'mlflow.db'}", tmp_path) as url:
        page = dump_dom(f"{url}/#/experiments/{exp.experiment_id}/runs/{parent.info.run_id}")
        assert "greenlane decision" in page and "Compare all 3 variant runs" in page
        for name in ("baseline@cpu", "bf16@cpu", "bnb-nf4@cpu"):
            assert name in page  # the parent's child-run list
        children = c.search_runs([exp.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
        ids = json.dumps([r.info.run_id for r in children])
        compare = dump_dom(f"{url}/#/compare-runs?runs={quote(ids)}&experiments={quote(json.dumps([exp.experiment_id]))}")
        for text in ("baseline@cpu", "bnb-nf4@cpu", "gco2e_per_1k_tokens", "accuracy_drop_ci95_hi", "estimate:"):
            assert text in compare, text
