"""`greenlane carbon` and `greenlane whatif` through tasks.cli.main, in process (they import nothing heavy)."""

from __future__ import annotations

import json

import pytest

from tasks import cli

CARBON_KEYS = [
    "operational_g",
    "embodied_g",
    "total_g",
    "region",
    "ci_g_per_kwh",
    "hardware",
    "embodied_kg",
    "lifetime_years",
]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_carbon_module_is_registered():
    assert "tasks.commands.carbon" in cli.COMMAND_MODULES


def test_carbon_json_has_exactly_the_issue_keys(capsys):
    code, out, _ = run(
        capsys, "carbon", "--energy-kwh", "0.07", "--seconds", "3600", "--region", "QC", "--hardware", "t4", "--json"
    )
    assert code == 0
    result = json.loads(out)
    assert list(result) == CARBON_KEYS
    assert result["operational_g"] == pytest.approx(2.17)
    assert result["embodied_g"] == pytest.approx(0.2351598, rel=1e-6)
    assert result["total_g"] == pytest.approx(2.4051598, rel=1e-6)
    assert (
        result["region"],
        result["ci_g_per_kwh"],
        result["hardware"],
        result["embodied_kg"],
        result["lifetime_years"],
    ) == (
        "QC",
        31.0,
        "t4",
        10.3,
        5.0,
    )


def test_carbon_pue_lifetime_and_hour(capsys, hourly_csv):
    code, out, _ = run(
        capsys,
        "carbon",
        "--energy-kwh",
        "1",
        "--seconds",
        "0",
        "--region",
        "CISO",
        "--hardware",
        "h100",
        "--pue",
        "1.2",
        "--lifetime-years",
        "4",
        "--hours-csv",
        str(hourly_csv),
        "--hour",
        "12",
        "--json",
    )
    result = json.loads(out)
    assert code == 0 and result["region"] == "CISO@12" and result["lifetime_years"] == 4.0
    assert result["operational_g"] == pytest.approx(1 * 1.2 * 220.0) and result["embodied_g"] == 0.0


def test_carbon_text_output_names_the_sources(capsys):
    code, out, _ = run(
        capsys, "carbon", "--energy-kwh", "0.07", "--seconds", "3600", "--region", "PACE", "--hardware", "a100"
    )
    assert code == 0 and "gCO2e" in out and "Nguyen" in out and "derived: ACT" in out


def test_carbon_list_shows_every_profile_and_grid_with_sources(capsys):
    code, out, _ = run(capsys, "carbon", "--list")
    assert code == 0
    for name in (
        "t4",
        "rtx6000-ada",
        "a100",
        "h100",
        "jetson-agx-orin",
        "jetson-orin-nano",
        "cpu",
        "QC",
        "CISO",
        "PACE",
    ):
        assert name in out
    assert "global_energy_mix.json" in out and "--countries" in out
    code, out, _ = run(capsys, "carbon", "--list", "--countries", "--json")
    listing = json.loads(out)
    assert all(p["embodied_source"] and p["source"] for p in listing["hardware"])
    assert any(c["region"] == "CAN" for c in listing["countries"])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--energy-kwh", "-1", "--seconds", "1", "--region", "QC", "--hardware", "t4"],
            "energy_kwh must be a finite number >= 0, got -1.0",
        ),
        (
            ["--energy-kwh", "1", "--seconds", "1", "--region", "QC", "--hardware", "t4", "--lifetime-years", "0"],
            "lifetime_years must be a finite number > 0, got 0.0",
        ),
        (
            ["--energy-kwh", "1", "--seconds", "1", "--region", "QC", "--hardware", "t4", "--pue", "0.8"],
            "pue must be >= 1.0",
        ),
        (["--energy-kwh", "1", "--seconds", "1", "--region", "QC", "--hardware", "v100"], "unknown hardware 'v100'"),
        (["--energy-kwh", "1", "--seconds", "1", "--region", "Narnia", "--hardware", "t4"], "unknown region 'Narnia'"),
        (["--energy-kwh", "1", "--region", "QC"], "carbon needs --seconds, --hardware"),
    ],
)
def test_carbon_bad_input_is_one_line_and_exit_2(capsys, argv, expected):
    code, out, err = run(capsys, "carbon", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("greenlane: error: ") and expected in err


def test_whatif_flags_rank_and_plot(capsys, tmp_path):
    png = tmp_path / "w.png"
    code, out, _ = run(
        capsys,
        "whatif",
        "--target",
        "ws-ada",
        "--hardware",
        "rtx6000-ada",
        "--energy-j-per-1k",
        "400",
        "--seconds-per-1k",
        "1",
        "--target",
        "edge-t4",
        "--hardware",
        "t4",
        "--energy-j-per-1k",
        "405",
        "--seconds-per-1k",
        "1",
        "--energy-source",
        "nvml",
        "--regions",
        "QC,PACE",
        "--json",
        "--plot",
        str(png),
    )
    rows = json.loads(out)
    assert code == 0 and png.is_file()
    assert [(r["target"], r["region"]) for r in rows] == [
        ("edge-t4", "QC"),
        ("ws-ada", "QC"),
        ("ws-ada", "PACE"),
        ("edge-t4", "PACE"),
    ]
    assert {r["energy_source"] for r in rows} == {"nvml"}


def test_whatif_table_from_options_file_with_hours(capsys, tmp_path, hourly_csv):
    options = tmp_path / "opts.json"
    options.write_text(
        json.dumps(
            [
                {
                    "target": "edge-t4",
                    "hardware": "t4",
                    "energy_j_per_1k_tokens": 405,
                    "busy_s_per_1k_tokens": 1,
                    "energy_source": "nvml",
                },
            ]
        )
    )
    code, out, _ = run(
        capsys, "whatif", "--options", str(options), "--regions", "QC", "--hours-csv", str(hourly_csv), "--top", "3"
    )
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 + 3
    assert " QC " in lines[2] and "hourly_two_days@12" in lines[3]


def test_whatif_user_numbers_default_to_an_estimate_label(capsys):
    code, out, _ = run(
        capsys, "whatif", "--hardware", "cpu", "--energy-j-per-1k", "300", "--seconds-per-1k", "2", "--json"
    )
    assert code == 0 and {r["energy_source"] for r in json.loads(out)} == {"estimate:user-input"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "whatif needs --options FILE"),
        (
            ["--hardware", "t4", "--energy-j-per-1k", "1"],
            "give --hardware, --energy-j-per-1k and --seconds-per-1k once per target",
        ),
        (
            ["--hardware", "t4", "--energy-j-per-1k", "-1", "--seconds-per-1k", "1"],
            "energy_j_per_1k_tokens must be a finite number >= 0",
        ),
        (
            ["--hardware", "t4", "--energy-j-per-1k", "1", "--seconds-per-1k", "1", "--regions", "QC,XX"],
            "unknown region 'XX'",
        ),
        (["--options", "/nonexistent/opts.json"], "options file '/nonexistent/opts.json' does not exist"),
    ],
)
def test_whatif_bad_input_is_one_line_and_exit_2(capsys, argv, expected):
    code, out, err = run(capsys, "whatif", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and expected in err
