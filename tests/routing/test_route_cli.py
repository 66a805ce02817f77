"""`greenlane route` with a candidates file, and workloads from CSV or the generator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tasks.cli import main
from tasks.errors import GreenlaneError
from tasks.routing import candidates, workload


@pytest.fixture
def workload_csv(tmp_path):
    return workload.write_csv(workload.make([5, 6, 7, 8], [10, 20, 30, 40], "test"), tmp_path / "w.csv")


def test_route_json_summary(capsys, candidates_file, workload_csv):
    assert main(["route", "--candidates", str(candidates_file), "--workload", str(workload_csv), "--zeta", "1",
                 "--max-share", "0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["routed"]["queries"] == {"big": 0, "mid": 2, "small": 2}
    assert out["routed"]["total_energy_j"] == pytest.approx(2 * (10 + 20) + 1 * (30 + 40))
    assert {"round-robin", "random", "single:big", "single:mid", "single:small"} == set(out["baselines"])
    assert out["energy_sources"] == {"big": "rapl", "mid": "rapl", "small": "rapl"}
    assert out["mixed_energy_sources"] is False


def test_route_text_carbon_objective_and_curve(capsys, candidates_file, tmp_path):
    assert main(["route", "--candidates", str(candidates_file), "--workload", "synthetic:200:3", "--zeta", "0.5",
                 "--objective", "carbon", "--curve", str(tmp_path / "curve")]) == 0
    text = capsys.readouterr().out
    assert "optimal routing" in text and "round-robin" in text and "energy source(s) behind the models: rapl" in text
    curve = json.loads((tmp_path / "curve" / "routing_curve.json").read_text())
    assert [p["zeta"] for p in curve["curve"]] == pytest.approx([i / 10 for i in range(11)])
    assert curve["objective"] == "carbon" and (tmp_path / "curve" / "routing_curves.png").is_file()


def test_route_infeasible_shares_exit_2(capsys, candidates_file, workload_csv):
    assert main(["route", "--candidates", str(candidates_file), "--workload", str(workload_csv), "--zeta", "0.5",
                 "--max-share", "0.2"]) == 2
    assert "infeasible shares" in capsys.readouterr().err


def test_candidates_file_errors_name_the_problem(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps([{"name": "a", "accuracy": 0.5}]))
    with pytest.raises(GreenlaneError, match=r"c.json\[0\]: missing energy_model, energy_source"):
        candidates.load_json(bad)


def test_workload_csv_round_trip_and_errors(tmp_path):
    w = workload.synthetic(50, seed=1)
    back = workload.read_csv(workload.write_csv(w, tmp_path / "w.csv"))
    assert np.array_equal(back.tin, w.tin) and np.array_equal(back.tout, w.tout)
    assert np.array_equal(workload.synthetic(50, seed=1).tin, w.tin)  # seeded
    (tmp_path / "bad.csv").write_text("tin,tout\n5,0\n")
    with pytest.raises(GreenlaneError, match="bad.csv:2: column tout: '0' is not a token count"):
        workload.read_csv(tmp_path / "bad.csv")
    with pytest.raises(GreenlaneError, match="query 0 has tin=5, tout=0;"):
        workload.make([5], [0], "test")
    (tmp_path / "cols.csv").write_text("prompt,completion\n5,6\n")
    with pytest.raises(GreenlaneError, match="missing column"):
        workload.read_csv(tmp_path / "cols.csv")
