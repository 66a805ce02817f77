"""The small tracking functions the pipeline, profiling, retrain and report call instead of MLflow's client."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from mlflow import MlflowClient

from tasks.tracking import runs


def test_name_description_text_and_file_land_on_the_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = runs.ensure_experiment(uri, "greenlane-notes", artifact_location=(tmp_path / "art").as_uri())
    run_id = runs.ensure_run(uri, exp, key="dag-1", run_name="optimize dag-1")
    runs.rename_run(uri, run_id, "retrain dag-1")
    runs.set_description(uri, run_id, "# decision\n\nbf16 wins")
    runs.log_text(uri, run_id, "# decision", "decision.md")
    png = tmp_path / "pareto.png"
    png.write_bytes(b"\x89PNG")
    runs.log_artifact_file(uri, run_id, png, "report")
    runs.log_artifact_file(uri, run_id, png)

    run = MlflowClient(uri).get_run(run_id)
    assert run.info.run_name == "retrain dag-1" and run.data.tags["mlflow.runName"] == "retrain dag-1"
    assert run.data.tags["mlflow.note.content"] == "# decision\n\nbf16 wins"  # the UI's description
    c = MlflowClient(uri)
    assert {a.path for a in c.list_artifacts(run_id)} == {"decision.md", "report", "pareto.png"}
    assert [a.path for a in c.list_artifacts(run_id, "report")] == ["report/pareto.png"]


def test_compare_link_names_the_runs_and_the_experiment():
    link = runs.compare_runs_link("7", ["a1", "b2"])
    assert link.startswith("#/compare-runs?")
    query = parse_qs(link.split("?", 1)[1])
    assert json.loads(query["runs"][0]) == ["a1", "b2"] and json.loads(query["experiments"][0]) == ["7"]
