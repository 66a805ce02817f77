"""The carbon formulas against hand-computed cases, and their input checks.

C_op = E[kWh] x PUE x CI;  C_em = t / (LT x 8760 h) x C_hw.
"""

from __future__ import annotations

from itertools import pairwise

import pytest

from tasks.carbon import accounting
from tasks.carbon.accounting import embodied_g, footprint, operational_g, per_1k_tokens
from tasks.errors import GreenlaneError

FIVE_YEARS_S = 5 * 365 * 24 * 3600  # 157,680,000 s


def test_operational_is_energy_times_pue_times_intensity():
    assert operational_g(1.0, 31.0) == pytest.approx(31.0)
    assert operational_g(0.5, 262.0, pue=1.2) == pytest.approx(0.5 * 1.2 * 262.0)  # 157.2 g


def test_embodied_is_busy_share_of_lifetime():
    # a whole lifetime busy is the whole manufacturing carbon; a day is 1/1825 of it
    assert embodied_g(FIVE_YEARS_S, 10.3, 5.0) == pytest.approx(10300.0)
    assert embodied_g(24 * 3600, 10.3, 5.0) == pytest.approx(10300.0 / 1825)


def test_seed_case_t4_busy_one_hour_on_qc():
    # Nguyen et al.'s setting: a T4 (10.3 kg) on the QC grid (31 g/kWh), busy 3600 s at its 70 W TDP.
    fp = footprint(energy_kwh=0.07, seconds=3600, region="QC", hardware="t4")
    assert fp.operational_g == pytest.approx(0.07 * 31)  # 2.17 g
    assert fp.embodied_g == pytest.approx(3600 / FIVE_YEARS_S * 10300)  # 0.23516 g
    assert fp.embodied_g == pytest.approx(0.2351598, rel=1e-6)
    assert fp.total_g == pytest.approx(2.17 + 0.2351598, rel=1e-6)
    # on this clean grid embodied is ~10% of the total; on PACE (647 g/kWh) it is ~0.5%
    assert fp.embodied_g / fp.total_g == pytest.approx(0.0978, abs=1e-3)
    pace = footprint(0.07, 3600, "PACE", "t4")
    assert pace.embodied_g / pace.total_g < 0.006


def test_lifetime_sweep_shrinks_embodied_share_monotonically():
    shares = []
    for years in (1, 2, 3, 4, 5, 6, 8, 10):
        fp = footprint(0.07, 3600, "QC", "t4", lifetime_years=years)
        assert fp.operational_g == pytest.approx(2.17)  # lifetime touches embodied only
        shares.append(fp.embodied_g / fp.total_g)
    assert all(a > b for a, b in pairwise(shares))


def test_per_1k_tokens_carries_units_sources_and_metrics():
    b = per_1k_tokens(
        energy_j_per_1k_tokens=3600.0,
        busy_s_per_1k_tokens=10.0,
        energy_source="nvml",
        region="CISO",
        hardware="rtx6000-ada",
        pue=1.5,
        energy_usd_per_kwh=0.10,
        instance_usd_per_hour=3.60,
    )
    kwh = 3600.0 / 3.6e6  # 0.001 kWh
    assert b.gco2e_operational_per_1k_tokens == pytest.approx(kwh * 1.5 * 262)  # 0.393 g
    assert b.gco2e_embodied_per_1k_tokens == pytest.approx(10 / FIVE_YEARS_S * 26600)
    assert b.gco2e_per_1k_tokens == pytest.approx(b.gco2e_operational_per_1k_tokens + b.gco2e_embodied_per_1k_tokens)
    assert b.usd_per_1k_tokens == pytest.approx(kwh * 1.5 * 0.10 + 10 / 3600 * 3.60)  # 0.00015 + 0.01
    assert (b.energy_source, b.measured, b.region, b.hardware, b.embodied_kg) == (
        "nvml",
        True,
        "CISO",
        "rtx6000-ada",
        26.6,
    )
    assert set(b.to_metrics()) == {
        "gco2e_operational_per_1k_tokens",
        "gco2e_embodied_per_1k_tokens",
        "gco2e_per_1k_tokens",
        "energy_j_per_1k_tokens",
        "usd_per_1k_tokens",
    }
    assert all(isinstance(v, float) for v in b.to_metrics().values())


def test_no_price_means_no_cost_metric_and_estimates_are_labelled():
    b = per_1k_tokens(100.0, 1.0, "estimate:cpu-tdp", "QC", "cpu")
    assert b.usd_per_1k_tokens is None and "usd_per_1k_tokens" not in b.to_metrics()
    assert not b.measured and b.to_dict()["measured"] is False


def test_hourly_intensity_replaces_the_region_average(hourly_csv):
    b = per_1k_tokens(3.6e6, 0.0, "nvml", "CISO", "t4", hour=12, hours_csv=hourly_csv)
    assert b.ci_g_per_kwh == pytest.approx(220.0)  # mean of 210 and 230 at 12:00
    assert b.region == "CISO@12" and "hourly CSV" in b.ci_source
    with pytest.raises(GreenlaneError, match="hour and hours_csv go together"):
        per_1k_tokens(1.0, 1.0, "nvml", "CISO", "t4", hour=12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: operational_g(-1.0, 31), r"energy_kwh must be a finite number >= 0, got -1\.0"),
        (lambda: operational_g(1.0, 31, pue=0.9), r"pue must be >= 1\.0 .* got 0\.9"),
        (lambda: embodied_g(-5, 10.3), r"seconds must be a finite number >= 0"),
        (lambda: embodied_g(5, 10.3, lifetime_years=0), r"lifetime_years must be a finite number > 0, got 0"),
        (lambda: embodied_g(5, 10.3, lifetime_years=-2), r"lifetime_years .* got -2"),
        (lambda: embodied_g(float("nan"), 10.3), r"seconds must be a finite number"),
        (lambda: per_1k_tokens(-1, 1, "nvml", "QC", "t4"), r"energy_j_per_1k_tokens must be .* got -1"),
        (lambda: per_1k_tokens(1, 1, "", "QC", "t4"), r"energy_source must name where the joules came from"),
        (lambda: footprint(1, 1, "QC", "b200"), r"unknown hardware 'b200'.*t4, rtx6000-ada.*greenlane carbon --list"),
        (lambda: footprint(1, 1, "Mars", "t4"), r"unknown region 'Mars'.*QC, CISO, PACE.*greenlane carbon --list"),
        (lambda: accounting.cost_usd(1, 1, energy_usd_per_kwh=-0.1), r"energy_usd_per_kwh must be .* got -0\.1"),
    ],
)
def test_bad_inputs_name_the_value_and_the_remedy(call, message):
    with pytest.raises(GreenlaneError, match=message):
        call()


def test_carbon_imports_nothing_heavy():
    # carbon is arithmetic: importing it (and the CLI module) must not pull torch, MLflow or matplotlib.
    import subprocess
    import sys

    code = (
        "import sys, tasks.carbon.accounting, tasks.carbon.whatif, tasks.carbon.detect, tasks.commands.carbon;"
        "print(sorted(m for m in ('torch', 'mlflow', 'airflow', 'matplotlib', 'codecarbon') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
