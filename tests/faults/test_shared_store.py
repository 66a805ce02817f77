"""Two `greenlane run`s at once, each in its own home, logging to one MLflow store (as two laptops logging to
one tracking server would, or a CI retrain beside a scheduled run).

Neither may break the other: both finish, no run is left RUNNING, each child run belongs to its own parent,
and the champion alias ends on a version of a FINISHED run. (A run in the *same* home is refused at once:
tests/faults/test_recovery.py.)
"""

from __future__ import annotations

import time

from mlflow import MlflowClient
from faults_helpers import SMALL_RUN, new_home, processes_of, start_run


def test_two_runs_on_one_store_both_finish_and_the_champion_is_a_finished_run(tiny_dir, tmp_path, migrated_db):
    store = f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}"
    (tmp_path / "shared").mkdir()
    homes = [new_home(tmp_path / name, migrated_db) for name in ("a", "b")]
    t0 = time.monotonic()
    procs = [start_run(home, "--set", f"base_model={tiny_dir}", "--set", f"mlflow.tracking_uri={store}", *SMALL_RUN)
             for home in homes]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    print(f"\ntwo runs on one store: both ended after {time.monotonic() - t0:.1f} s")
    for p, err in zip(procs, errs):
        assert p.returncode == 0, err[-3000:]
        assert "Traceback" not in err, err[-3000:]

    mlflow = MlflowClient(store)
    runs = mlflow.search_runs([e.experiment_id for e in mlflow.search_experiments()])
    assert len(mlflow.search_experiments(filter_string="name LIKE 'greenlane-%'")) == 1  # created once, not twice
    assert {r.info.status for r in runs} == {"FINISHED"}, [(r.info.run_name, r.info.status) for r in runs]
    parents = {r.info.run_id: r for r in runs if "greenlane.dag_run_id" in r.data.tags}
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in parents]
    assert len(parents) == 2 and len(children) == 2, [r.info.run_name for r in runs]
    assert len({c.data.tags["mlflow.parentRunId"] for c in children}) == 2  # one baseline child per parent

    [model] = mlflow.search_registered_models()
    assert set(model.aliases) == {"champion", "champion-cpu"}
    champion = mlflow.get_model_version(model.name, model.aliases["champion-cpu"])
    assert mlflow.get_run(champion.run_id).info.status == "FINISHED"
    assert champion.run_id in {c.info.run_id for c in children}
    assert not any(processes_of(home) for home in homes)
