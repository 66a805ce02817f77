"""Repeated passes (CI stopping, seeded prompt order), the prefill/decode split and summed readings,
on a fake generator and a fake meter so every number is known."""

from __future__ import annotations

import pytest

from tasks.config import BenchmarkConfig
from tasks.measurement import passes
from tasks.measurement.energy import EnergyReading, sum_readings
from tasks.runtimes.base import Generation


class FakeMeter:
    """Each window reads the next (joules, seconds) of a script; constant when the script runs out."""

    name = "fake"

    def __init__(self, script):
        self.script = list(script)

    def start(self):
        pass

    def stop(self):
        j, s = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return EnergyReading(energy_j=j, duration_s=s, source="estimate:fake", details={"cpu_j": j, "watts": 7})


def timing(n: int, total_s: float) -> Generation:
    """A request with a 10-token prompt, `n` new tokens and a 10 ms first token."""
    return Generation(prompt_tokens=10, token_ids=[0] * n, text="out", ttft_s=0.01, total_s=total_s)


@pytest.fixture
def fake_generate(monkeypatch):
    """timed_generate/prefill stand-ins; `seen` collects prompts in the order they were generated."""
    seen, latencies = [], iter([])

    def set_latencies(values):
        nonlocal latencies
        latencies = iter(values)

    def timed_generate(runtime, prompt, n):
        seen.append(prompt)
        return timing(n, total_s=next(latencies, 1.0))

    monkeypatch.setattr(passes.latency, "timed_generate", timed_generate)
    monkeypatch.setattr(passes.latency, "prefill", lambda runtime, prompt: 10)
    return seen, set_latencies


def test_stops_at_minimum_when_already_tight(fake_generate):
    seen, _ = fake_generate
    cfg = BenchmarkConfig(prompts=3, warmup=0, repeats=2, max_repeats=8, max_new_tokens=5)
    done, samples, converged = passes.run_passes(None, ["a", "b", "c"], cfg, FakeMeter([(10.0, 1.0)]))
    assert len(done) == 2 and converged and len(samples) == 3  # constant figures: zero-width CI


def test_noisy_figures_repeat_to_the_maximum(fake_generate):
    _, set_latencies = fake_generate
    set_latencies([1.0, 3.0] * 50)
    cfg = BenchmarkConfig(prompts=2, warmup=0, repeats=2, max_repeats=5, max_new_tokens=5)
    done, _, converged = passes.run_passes(None, ["a", "b"], cfg, FakeMeter([(10.0, 1.0)]))
    assert len(done) == 5 and not converged


def test_prompt_order_is_shuffled_and_seeded(fake_generate):
    seen, _ = fake_generate
    prompts = [f"p{i}" for i in range(8)]
    cfg = BenchmarkConfig(prompts=8, warmup=0, repeats=3, max_repeats=3)
    passes.run_passes(None, prompts, cfg, FakeMeter([(1.0, 1.0)]), seed=7)
    first = list(seen)
    orders = [first[i * 8:(i + 1) * 8] for i in range(3)]
    assert all(sorted(o) == prompts for o in orders) and len({tuple(o) for o in orders}) > 1
    seen.clear()
    passes.run_passes(None, prompts, cfg, FakeMeter([(1.0, 1.0)]), seed=7)
    assert seen == first


def test_phase_split_by_hand():
    # 2 requests x 10 prompt tokens, 5 output tokens each -> 8 decode tokens per pass
    timings = [timing(5, total_s=1.0)] * 2
    gen = EnergyReading(energy_j=9.0, duration_s=2.0, source="estimate:fake")
    pre = EnergyReading(energy_j=4.0, duration_s=0.8, source="estimate:fake")  # PREFILL_LOOPS = 4 loops
    out = passes.phase_split([passes.Pass(timings, gen, pre)])
    assert out["prefill_j_per_token"] == pytest.approx(1.0 / 20)
    assert out["prefill_ms_per_token"] == pytest.approx(0.2 / 20 * 1000)
    assert out["decode_j_per_token"] == pytest.approx((9.0 - 1.0) / 8)
    assert out["decode_ms_per_token"] == pytest.approx((2.0 - 0.2) / 8 * 1000)
    assert out["phase_energy_source"] == "estimate:fake" and out["prefill_j_per_token_ci95"] is None


def test_summarize_reports_mean_ci_n():
    timings = [timing(5, total_s=1.0), timing(5, total_s=1.2)]
    done = [passes.Pass(timings, EnergyReading(j, 2.2, "estimate:fake"), EnergyReading(0.4, 0.1, "estimate:fake"))
            for j in (10.0, 12.0, 11.0)]
    rec, reading = passes.summarize(done, converged=False, ci_target=0.05)
    assert rec["latency_n"] == 6 and rec["latency_mean_ms"] == pytest.approx(1100.0)
    assert rec["energy_n"] == 3 and rec["energy_j_per_1k_tokens_mean"] == pytest.approx(1100.0)
    assert rec["energy_j_per_1k_tokens_ci95"] > 0 and rec["passes"] == 3
    assert reading.energy_j == pytest.approx(33.0) and reading.details["windows"] == 3


def test_sum_readings_adds_extensive_details_only():
    a = EnergyReading(2.0, 1.0, "rapl", details={"package_j": 2.0, "cpu_s": 0.5, "watts_per_core": 10})
    b = EnergyReading(3.0, 2.0, "rapl", details={"package_j": 3.0, "cpu_s": 1.5, "watts_per_core": 10})
    total = sum_readings([a, b])
    assert (total.energy_j, total.duration_s) == (5.0, 3.0)
    assert total.details["package_j"] == 5.0 and total.details["cpu_s"] == 2.0 and total.details["watts_per_core"] == 10
    with pytest.raises(ValueError, match="different sources"):
        sum_readings([a, EnergyReading(1.0, 1.0, "nvml")])
