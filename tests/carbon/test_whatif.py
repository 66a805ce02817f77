"""What-if placement: ranking order, the embodied flip on a clean grid, hours, sources, the plot."""

from __future__ import annotations

import json

import pytest

from tasks.carbon import whatif
from tasks.carbon.whatif import Option
from tasks.errors import GreenlaneError

FIVE_YEARS_S = 5 * 365 * 24 * 3600

# Same busy time, the newer GPU a little more energy-efficient: 400 J vs 405 J per 1k tokens.
ADA = Option("ws-ada", "rtx6000-ada", 400.0, 1.0, "nvml")
T4 = Option("edge-t4", "t4", 405.0, 1.0, "nvml")


def test_older_gpu_wins_on_a_clean_grid_and_loses_on_a_dirty_one():
    rows = whatif.rank([ADA, T4], ["QC", "PACE"])
    assert [(r.target, r.region) for r in rows] == [
        ("edge-t4", "QC"),  # 0.0034875 op + 0.0000653 em = 0.0035528 g
        ("ws-ada", "QC"),  # 0.0034444 op + 0.0001687 em = 0.0036131 g
        ("ws-ada", "PACE"),  # 0.0718889 + 0.0001687 = 0.0720576 g
        ("edge-t4", "PACE"),  # 0.0727875 + 0.0000653 = 0.0728528 g
    ]
    assert [r.rank for r in rows] == [1, 2, 3, 4]
    best = rows[0]
    assert best.gco2e_operational_per_1k_tokens == pytest.approx(405 / 3.6e6 * 31)
    assert best.gco2e_embodied_per_1k_tokens == pytest.approx(1 / FIVE_YEARS_S * 10300)
    assert best.gco2e_per_1k_tokens == pytest.approx(0.0035528, rel=1e-4)
    assert rows[3].gco2e_per_1k_tokens == pytest.approx(0.0728528, rel=1e-4)
    assert all(r.energy_source == "nvml" and r.measured for r in rows)
    assert whatif.format_table(rows).count("\n") == 5 and "note:" not in whatif.format_table(rows)


def test_hourly_csv_adds_one_row_per_hour(hourly_csv):
    rows = whatif.rank([T4], [], hours_csv=hourly_csv, hours_label="CISO")
    assert len(rows) == 24
    assert (rows[0].region, rows[0].hour, rows[0].ci_g_per_kwh) == ("CISO@12", 12, pytest.approx(220.0))
    assert {rows[1].hour, rows[2].hour} == {11, 13}  # 235 g/kWh either side of noon
    assert rows[-1].ci_g_per_kwh == pytest.approx(310.0)  # night
    assert [r.gco2e_per_1k_tokens for r in rows] == sorted(r.gco2e_per_1k_tokens for r in rows)
    with_regions = whatif.rank([T4], ["QC"], hours_csv=hourly_csv)
    assert with_regions[0].region == "QC" and with_regions[0].hour is None and len(with_regions) == 25


def test_mixed_measured_and_estimated_energy_is_never_silent():
    est = Option("laptop", "cpu", 300.0, 2.0, "estimate:cpu-time-x-10w-per-core+3w-ram")
    rows = whatif.rank([ADA, est], ["QC"])
    assert {(r.target, r.energy_source, r.measured) for r in rows} == {
        ("ws-ada", "nvml", True),
        ("laptop", "estimate:cpu-time-x-10w-per-core+3w-ram", False),
    }
    assert whatif.mixed_sources(rows)
    table = whatif.format_table(rows)
    assert "estimate:cpu-time" in table and "mixes measured and estimated energy" in table


def test_lifetime_and_pue_reach_every_row():
    short = whatif.rank([T4], ["QC"], lifetime_years=1)[0]
    long = whatif.rank([T4], ["QC"], lifetime_years=10)[0]
    assert short.embodied_share > long.embodied_share
    assert whatif.rank([T4], ["QC"], pue=1.5)[0].gco2e_operational_per_1k_tokens == pytest.approx(
        405 / 3.6e6 * 31 * 1.5
    )


def test_bad_options_are_refused():
    with pytest.raises(GreenlaneError, match="at least one option"):
        whatif.rank([], ["QC"])
    with pytest.raises(GreenlaneError, match="unknown region 'Atlantis'"):
        whatif.rank([T4], ["Atlantis"])
    with pytest.raises(GreenlaneError, match="unknown hardware 'tpu'"):
        whatif.rank([Option("x", "tpu", 1.0, 1.0, "nvml")], ["QC"])
    with pytest.raises(GreenlaneError, match=r"opt: missing energy_source"):
        Option.from_dict(
            {"target": "a", "hardware": "t4", "energy_j_per_1k_tokens": 1, "busy_s_per_1k_tokens": 1}, "opt"
        )


def test_options_files_json_and_csv(tmp_path):
    js = tmp_path / "o.json"
    js.write_text(json.dumps([{**vars(ADA)}, {**vars(T4)}]))
    csv = tmp_path / "o.csv"
    csv.write_text(
        "target,hardware,energy_j_per_1k_tokens,busy_s_per_1k_tokens,energy_source\n"
        "ws-ada,rtx6000-ada,400,1,nvml\nedge-t4,t4,405,1,nvml\n"
    )
    assert whatif.read_options(js) == whatif.read_options(csv) == [ADA, T4]
    bad = tmp_path / "o.csv"
    bad.write_text("target,hardware,energy_j_per_1k_tokens,busy_s_per_1k_tokens,energy_source\nx,t4,lots,1,nvml\n")
    with pytest.raises(GreenlaneError, match=r"o\.csv:2: could not convert string to float: 'lots'"):
        whatif.read_options(bad)


def test_plot_writes_a_png(tmp_path):
    rows = whatif.rank([ADA, T4, Option("laptop", "cpu", 300.0, 2.0, "estimate:x")], ["QC", "CISO", "PACE"])
    path = whatif.plot(rows, tmp_path / "plots" / "whatif.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
