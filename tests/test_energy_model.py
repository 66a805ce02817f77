"""Workload energy models, fitted on the real A100 grid from the seed paper's repository.

The CSV (../shared/data/a100-energy-grid.csv, see its README) is real measured data: the paper's
OLS form fits it with R^2 ~0.96 but a median error of 79-234% and negative predictions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tasks import cli, energy_model
from tasks.errors import GreenlaneError

A100 = Path(__file__).resolve().parents[2] / "shared" / "data" / "a100-energy-grid.csv"
if not A100.exists():  # a worktree elsewhere; the shared data sits beside the main checkout
    A100 = Path("/work/shared/data/a100-energy-grid.csv")
needs_a100 = pytest.mark.skipif(not A100.exists(), reason="shared A100 grid not present")


@pytest.fixture(scope="module")
def a100_fits():
    return {target: energy_model.fit_csv(A100, target) for target in energy_model.TARGETS}


@needs_a100
@pytest.mark.parametrize("target", energy_model.TARGETS)
def test_beats_paper_form_by_a_wide_margin(a100_fits, target):
    grids = energy_model.read_grid(A100, target)
    assert len(grids) == 7
    for name, model in a100_fits[target].items():
        paper = energy_model.paper_baseline(*grids[name])
        # Our error is out-of-fold, the paper's in-sample (flattering it); still >10x apart.
        assert model.cv_mdape < 0.06, (name, model.cv_mdape)
        assert paper["mdape"] > 10 * model.cv_mdape, (name, paper["mdape"], model.cv_mdape)
        assert paper["negative_predictions"] > 0
        assert model.r2 > 0.95


@needs_a100
def test_paper_baseline_reproduces_the_readme_figures():
    for tin, tout, y in energy_model.read_grid(A100).values():
        paper = energy_model.paper_baseline(tin, tout, y)
        assert 0.959 <= round(paper["r2"], 3) <= 0.975
        assert 0.78 <= paper["mdape"] <= 2.35
        assert 5 <= paper["negative_predictions"] <= 17


@needs_a100
def test_never_negative_even_off_grid(a100_fits):
    tins, touts = np.meshgrid(np.arange(0, 4097, 64), np.arange(0, 4097, 64))
    for models in a100_fits.values():
        for model in models.values():
            assert model.min_prediction > 0
            assert all(c >= 0 for c in model.coefficients)
            assert model.predict(tins.ravel(), touts.ravel()).min() >= 0


def test_recovers_a_known_form_with_fixed_cost():
    tin, tout = np.array(energy_model.sweep_grid(energy_model.powers_of_two(), energy_model.powers_of_two())).T
    y = 20.0 + 0.01 * tin + 3.0 * tout + 0.002 * tin * tout + 0.004 * tout**2
    model = energy_model.fit(tin, tout, y)
    assert model.cv_mdape < 1e-6
    assert model.predict(0, 0)[0] == pytest.approx(20.0, rel=1e-4)


def test_save_and_load_round_trip(tmp_path):
    tin, tout = np.array(energy_model.sweep_grid([8, 64, 512], [8, 64, 512, 1024])).T
    model = energy_model.fit(tin, tout, 5.0 + tin * tout * 0.01, target="runtime_s")
    path = energy_model.save_models({"tiny": model}, tmp_path / "m.json")
    loaded = energy_model.load_models(path)["tiny"]
    assert loaded == model
    assert loaded.predict([100], [200])[0] == pytest.approx(model.predict([100], [200])[0])


def test_sweep_grid_and_axis():
    assert energy_model.powers_of_two(8, 64) == [8, 16, 32, 64]
    assert energy_model.sweep_grid([1, 2], [3]) == [(1, 3), (2, 3)]


def test_bad_points_raise_user_errors():
    with pytest.raises(GreenlaneError, match="> 0"):
        energy_model.fit([1] * 12, [1] * 12, [0.0] * 12)
    with pytest.raises(GreenlaneError, match="at least 10"):
        energy_model.fit([1, 2], [1, 2], [1.0, 2.0])


# --- CLI: main() with only this command registered, so sibling commands under construction don't matter.


@pytest.fixture
def greenlane(monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["tasks.commands.energy_model"])

    def run(*argv):
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_energy_model_is_registered():
    assert "tasks.commands.energy_model" in cli.COMMAND_MODULES


@needs_a100
def test_cli_json_shape(greenlane, tmp_path):
    out_json = str(tmp_path / "fit.json")
    argv = ["energy-model", "fit", "--csv", str(A100), "--target", "runtime_s", "--json", "--out", out_json]
    code, out, _ = greenlane(*argv)
    assert code == 0
    report = json.loads(out)
    assert len(report) == 7
    for figures in report.values():
        assert set(figures) == {"r2", "cv_mdape", "min_prediction", "terms", "coefficients"}
        assert 0 < figures["cv_mdape"] < 1 and figures["min_prediction"] >= 0
        assert len(figures["terms"]) == len(figures["coefficients"])
    assert set(energy_model.load_models(tmp_path / "fit.json")) == set(report)


def test_cli_without_model_column_fits_all(greenlane, tmp_path):
    csv = tmp_path / "grid.csv"
    rows = [f"{i},{o},{1 + 0.1 * i + 0.5 * o}" for i, o in energy_model.sweep_grid([8, 32, 128, 512], [8, 32, 128])]
    csv.write_text("tin,tout,energy_j\n" + "\n".join(rows) + "\n")
    code, out, _ = greenlane("energy-model", "fit", "--csv", str(csv), "--json")
    assert code == 0 and list(json.loads(out)) == ["all"]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such CSV file"),
        ("tin,tout\n1,2\n", "missing column(s) energy_j"),
        ("tin,tout,energy_j\n1,2,abc\n", ":2: tin, tout and energy_j must be numbers"),
        ("tin,tout,energy_j\n1,2,3\n", "need at least 10 points"),
        ("tin,tout,energy_j\n", "no data rows"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(greenlane, tmp_path, content, message):
    csv = tmp_path / "bad.csv"
    if content is not None:
        csv.write_text(content)
    code, out, err = greenlane("energy-model", "fit", "--csv", str(csv), "--json")
    assert code == 2 and out == ""
    assert err.startswith("greenlane: error: ") and message in err and err.count("\n") == 1


def _grid_csv(path: Path, first_row: str | None = None) -> Path:
    rows = [f"{i},{o},{1 + 0.1 * i + 0.5 * o}" for i, o in energy_model.sweep_grid([8, 32, 128, 512], [8, 32, 128])]
    if first_row:
        rows[0] = first_row
    path.write_text("tin,tout,energy_j\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",
                                     b"tin,tout,energy_j\n\xff\xfe\x00\x01\n"])
def test_cli_binary_csv_is_one_line_exit_2(greenlane, tmp_path, content):
    csv = tmp_path / "grid.csv"
    csv.write_bytes(content)
    code, out, err = greenlane("energy-model", "fit", "--csv", str(csv), "--json")
    assert code == 2 and out == ""
    assert err.startswith(f"greenlane: error: {csv} is not a UTF-8 text CSV (UnicodeDecodeError: ")
    assert err.count("\n") == 1


def test_cli_absurd_token_count_is_one_line_exit_2(greenlane, tmp_path):
    csv = _grid_csv(tmp_path / "grid.csv", first_row="1e300,8,5.0")
    code, out, err = greenlane("energy-model", "fit", "--csv", str(csv), "--json")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "token counts must be at most 10,000,000 per request (MAX_TOKENS), got 1e+300" in err


@pytest.mark.parametrize("where", ["a directory", "under a file"])
def test_cli_unwritable_out_is_one_line_exit_2(greenlane, tmp_path, where):
    csv = _grid_csv(tmp_path / "grid.csv")
    (tmp_path / "taken").mkdir()
    (tmp_path / "file").write_text("")
    out_path = tmp_path / "taken" if where == "a directory" else tmp_path / "file" / "fit.json"
    code, out, err = greenlane("energy-model", "fit", "--csv", str(csv), "--json", "--out", str(out_path))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"greenlane: error: cannot write the energy models to {out_path}: ")
