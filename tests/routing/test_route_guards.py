"""`greenlane route` guards: workload size limits, solver time limits, token counts checked where they are read."""

from __future__ import annotations


import numpy as np
import pytest

from tasks.cli import main
from tasks.errors import GreenlaneError
from tasks.routing import solve, workload


def route(capsys, candidates_file, *args) -> tuple[int, str]:
    code = main(["route", "--candidates", str(candidates_file), "--zeta", "1", "--max-share", "0.5", *args])
    err = capsys.readouterr().err
    assert err.count("\n") <= 1, err  # one line, no traceback
    return code, err.strip()


# --- token counts: the row and column that are wrong, not the candidates' energy models


@pytest.mark.parametrize("cell", ["1e300", "inf", "nan", "-3", "0", "2.5", "many", "10000001"])
def test_a_bad_token_count_names_its_row_and_column(capsys, candidates_file, tmp_path, cell):
    csv = tmp_path / "w.csv"
    csv.write_text(f"tin,tout\n5,10\n{cell},20\n")
    code, err = route(capsys, candidates_file, "--workload", str(csv))
    assert code == 2
    assert err == (f"greenlane: error: {csv}:3: column tin: {cell!r} is not a token count "
                   "(a whole number from 1 to 10,000,000)")


def test_the_largest_token_count_routes(capsys, candidates_file, tmp_path):
    csv = tmp_path / "w.csv"
    csv.write_text("tin,tout\n5,10\n5,10000000\n")
    code, _ = route(capsys, candidates_file, "--workload", str(csv))
    assert code == 0


def test_a_binary_workload_is_one_line(capsys, candidates_file, tmp_path):
    csv = tmp_path / "w.csv"
    csv.write_bytes(b"tin,tout\n\xff\xfe\x00\x01\n")
    code, err = route(capsys, candidates_file, "--workload", str(csv))
    assert code == 2 and err.startswith(f"greenlane: error: {csv} is not a UTF-8 text CSV (UnicodeDecodeError: ")


# --- workload size


def test_size_limits_and_help_agree(capsys):
    assert solve.MAX_QUERIES == {"fast": 1_000_000, "pulp": 20_000}
    with pytest.raises(SystemExit):
        main(["route", "--help"])
    route_help = " ".join(capsys.readouterr().out.split())
    assert "HiGHS), up to 1,000,000 queries" in route_help and "(slower), up to 20,000" in route_help


def test_a_synthetic_workload_too_large_for_pulp_is_refused_before_it_is_built(capsys, candidates_file, monkeypatch):
    monkeypatch.setattr(workload, "synthetic", lambda *a, **k: pytest.fail("built the workload"))
    code, err = route(capsys, candidates_file, "--workload", "synthetic:20001", "--solver", "pulp")
    assert code == 2
    assert err == ("greenlane: error: the workload has 20,001 queries, but --solver pulp routes at most 20,000 "
                   "queries per run (MAX_QUERIES); use --solver fast (up to 1,000,000)")


def test_a_workload_csv_too_large_stops_reading_at_the_limit(capsys, candidates_file, tmp_path, monkeypatch):
    monkeypatch.setitem(solve.MAX_QUERIES, "fast", 3)
    csv = tmp_path / "w.csv"
    csv.write_text("tin,tout\n5,10\n5,20\n5,30\n5,40\nnot,read\n")  # the bad row is past the limit: never read
    code, err = route(capsys, candidates_file, "--workload", str(csv))
    assert code == 2
    assert err == (f"greenlane: error: {csv}: more than 3 queries: --solver fast routes at most 3 queries per run "
                   "(MAX_QUERIES); route it in parts of at most that many queries")


def test_the_library_refuses_too_many_queries_too(monkeypatch, trio):
    monkeypatch.setitem(solve.MAX_QUERIES, "pulp", 2)
    work = workload.make([5, 5, 5], [1, 2, 3], "test")
    from tasks.routing import evaluate

    with pytest.raises(GreenlaneError, match="the workload has 3 queries, but --solver pulp routes at most 2"):
        evaluate.route(work, trio, zeta=0.5, solver="pulp")


# --- time limits


def _binding_problem(n: int = 40, k: int = 3):
    """Shares that bind, so neither solver can take the plain argmin."""
    cost = np.random.default_rng(0).normal(size=(n, k))
    return cost, np.zeros(k, dtype=np.int64), np.full(k, n // k + 1)


@pytest.mark.parametrize("solver", ["fast", "pulp"])
def test_time_limit_hit_is_one_line(capsys, candidates_file, solver):
    code, err = route(capsys, candidates_file, "--workload", "synthetic:300", "--solver", solver,
                      "--time-limit", "1e-9")
    assert code == 2
    hint = "raise --time-limit, use --solver fast or route fewer queries" if solver == "pulp" else \
        "raise --time-limit or route fewer queries"
    assert err == f"greenlane: error: the {solver} solver hit its time limit of 1e-09 s (--time-limit) on 300 queries; {hint}"


def test_highs_gets_the_time_limit_and_its_stop_is_a_clear_error(monkeypatch):
    import scipy.optimize

    real, seen = scipy.optimize.linprog, []

    def linprog(*args, options=None, **kwargs):
        seen.append(options["time_limit"])
        return real(*args, options={**options, "time_limit": 1e-9}, **kwargs)  # HiGHS itself stops on time

    monkeypatch.setattr(scipy.optimize, "linprog", linprog)
    with pytest.raises(GreenlaneError, match=r"the fast solver hit its time limit of 30 s \(--time-limit\) on 40 queries"):
        solve.solve(*_binding_problem(), "fast", time_limit_s=30)
    assert len(seen) == 1 and 29 < seen[0] <= 30


def test_cbc_gets_the_time_limit(monkeypatch):
    import pulp

    real, seen = pulp.PULP_CBC_CMD, []

    def cbc(**kwargs):
        seen.append(kwargs["timeLimit"])
        return real(**kwargs)

    monkeypatch.setattr(pulp, "PULP_CBC_CMD", cbc)
    cost, lo, hi = _binding_problem()
    assign, _ = solve.solve(cost, lo, hi, "pulp", time_limit_s=30)
    assert len(seen) == 1 and 25 < seen[0] <= 30
    assert np.all(np.bincount(assign, minlength=3) <= hi)


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "soon"])
def test_time_limit_must_be_positive_seconds(capsys, candidates_file, value):
    with pytest.raises(SystemExit) as exit_:
        main(["route", "--candidates", str(candidates_file), "--zeta", "1", "--workload", "synthetic:5",
              "--time-limit", value])
    assert exit_.value.code == 2
    assert f"--time-limit: must be a number of seconds > 0, got {value!r}" in capsys.readouterr().err
