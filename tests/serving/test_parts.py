"""The serving parts without a model: cache keys and eviction, batch formation, the serve config's checks."""

from __future__ import annotations

import threading
import time

import pytest

from tasks.config import ServeConfig
from tasks.errors import GreenlaneError
from tasks.serving.batching import Batcher, Job, QueueFull
from tasks.serving.cache import LruCache, cache_key, make_cache
from tasks.serving.openai import apply_stop


def test_cache_keys_separate_versions_and_parameters():
    request = {"prompt": "Hi", "max_tokens": 8, "stop": []}
    assert cache_key("m", "1", request) == cache_key("m", "1", dict(reversed(request.items())))
    assert cache_key("m", "1", request) != cache_key("m", "2", request)
    assert cache_key("m", "1", request) != cache_key("m", "1", {**request, "max_tokens": 9})
    assert cache_key("m", "1", request) != cache_key("other", "1", request)


def test_lru_evicts_the_least_recently_used():
    cache = LruCache(2)
    cache.put("a", {"text": "A"})
    cache.put("b", {"text": "B"})
    assert cache.get("a") == {"text": "A"}  # a is now the most recent
    cache.put("c", {"text": "C"})
    assert cache.get("b") is None and cache.get("a") and cache.get("c")
    assert make_cache("none") is None
    with pytest.raises(GreenlaneError, match="redis_url"):
        make_cache("redis")


def test_requests_arriving_within_the_wait_form_one_batch():
    batches, gate = [], threading.Event()

    def serve(jobs):
        gate.wait(5)
        batches.append(len(jobs))
        for job in jobs:
            job.future.set_result(job.ids)

    batcher = Batcher(serve, max_batch=3, max_wait_ms=300, max_queue=10)
    try:
        futures = [batcher.submit(Job([i], 4)) for i in range(5)]
        gate.set()
        assert [f.result(timeout=10) for f in futures] == [[i] for i in range(5)]
        assert batches == [3, 2]  # at most max_batch; the rest waited its turn, then went together
    finally:
        batcher.close()


def test_a_lone_request_waits_at_most_max_wait():
    batcher = Batcher(lambda jobs: [j.future.set_result(len(jobs)) for j in jobs], 8, 50, 10)
    try:
        t0 = time.perf_counter()
        assert batcher.submit(Job([1], 4)).result(timeout=10) == 1
        assert time.perf_counter() - t0 < 1.0
    finally:
        batcher.close()


def test_a_full_queue_refuses_instead_of_growing():
    gate = threading.Event()

    def serve(jobs):
        gate.wait(5)
        for job in jobs:
            job.future.set_result(1)

    batcher = Batcher(serve, max_batch=1, max_wait_ms=0, max_queue=2)
    try:
        futures = [batcher.submit(Job([1], 4))]
        time.sleep(0.2)  # the worker holds the first; two more fill the queue
        futures += [batcher.submit(Job([1], 4)) for _ in range(2)]
        with pytest.raises(QueueFull):
            batcher.submit(Job([1], 4))
        gate.set()
        assert [f.result(timeout=10) for f in futures] == [1, 1, 1]
    finally:
        gate.set()
        batcher.close()


def test_serve_config_is_checked_at_load():
    with pytest.raises(ValueError, match="redis_url"):
        ServeConfig(cache="redis")
    with pytest.raises(ValueError, match="default_max_tokens"):
        ServeConfig(default_max_tokens=300, max_tokens_limit=256)
    with pytest.raises(ValueError):
        ServeConfig(cache="memcached")
    assert ServeConfig().host == "127.0.0.1"


def test_stop_strings_cut_at_the_first():
    assert apply_stop("one. two! three", [".", "!"]) == ("one", True)
    assert apply_stop("no stop here", ["###"]) == ("no stop here", False)


class _Scheduler:
    def __init__(self, function, interval):
        self.function, self.interval = function, interval


class _SamplingMeter:
    """A meter shaped like CodecarbonMeter: a tracker per window with a utilization sampler of its own (every
    0.1 s here, so the test's 0.2-s windows show it slowed down to once a window)."""

    def __init__(self):
        self.measure_power_secs, self.windows, self._tracker = 0.1, 0, None

    def start(self):
        self._tracker = type("Tracker", (), {})()
        self._tracker._scheduler = _Scheduler(lambda: None, self.measure_power_secs)
        self._tracker._scheduler_monitor_power = _Scheduler(_burn, 0.1)

    def stop(self):
        from tasks.measurement.energy import EnergyReading

        self.windows += 1
        return EnergyReading(energy_j=2.0, duration_s=0.2, source="estimate:fake")


def _burn():
    t = time.thread_time()
    while time.thread_time() - t < 0.05:  # 50 ms of CPU
        pass


def test_energy_monitor_counts_windows_tokens_and_its_own_cpu():
    from tasks.serving.metrics import EnergyMonitor, ServeMetrics

    metrics, meter = ServeMetrics("m", "1", "cpu"), _SamplingMeter()
    monitor = EnergyMonitor(meter, metrics, lambda energy_j, seconds: energy_j * 0.1, window_s=0.2)
    monitor.start()
    time.sleep(0.1)
    tracker = meter._tracker
    assert tracker._scheduler_monitor_power.interval == 0.2 and meter.measure_power_secs == 0.2  # sampled less
    sampler = threading.Thread(target=tracker._scheduler_monitor_power.function)  # as codecarbon's timer thread
    sampler.start()
    sampler.join()
    metrics.runtime_call(2, 500)
    time.sleep(0.5)
    monitor.stop()
    base, source = metrics.base, {"source": "estimate:fake"}
    windows = meter.windows
    assert windows >= 2 and monitor.source == "estimate:fake"
    assert metrics.energy.labels(**base, **source)._value.get() == pytest.approx(2.0 * windows)
    assert metrics.carbon.labels(**base, **source)._value.get() == pytest.approx(0.2 * windows)
    assert metrics.live.labels(**base, **source)._value.get() == pytest.approx(2.0 / 500 * 1000)  # one window had tokens
    assert metrics.overhead.labels(**base)._value.get() >= 0.05  # the sampler thread's 50 ms are counted


def test_energy_monitor_reads_codecarbon_in_windows_of_one_tracker(tmp_path):
    """The real codecarbon meter, windowed: one tracker for the monitor's life, each window one task, with the
    label the per-window start/stop path gives, joules in every window and seconds that add up to the wall."""
    from tasks.measurement.meters.codecarbon import CodecarbonMeter
    from tasks.serving.metrics import EnergyMonitor, ServeMetrics

    classic = CodecarbonMeter(tmp_path / "classic")
    classic.start()  # also imports codecarbon, so the wall below is the monitor's, not an import's
    time.sleep(0.2)
    expected_source = classic.stop().source

    windows = []  # (energy_j, seconds) of each window, as the monitor hands them to the carbon accounting
    metrics = ServeMetrics("m", "1", "cpu")
    monitor = EnergyMonitor(CodecarbonMeter(tmp_path / "windowed"), metrics,
                            lambda energy_j, seconds: windows.append((energy_j, seconds)) or 0.0, window_s=0.3)
    t0 = time.perf_counter()
    monitor.start()
    while monitor.meter._tracker is None:
        time.sleep(0.01)
    tracker = monitor.meter._tracker
    sampler = tracker._scheduler_monitor_power
    trackers = set()
    for _ in range(5):
        _burn()  # the process does some work while it is metered
        trackers.add(id(monitor.meter._tracker))
        time.sleep(0.2)
    assert len(tracker._tasks) <= 1  # finished windows are not kept
    monitor.stop()
    wall_s = time.perf_counter() - t0

    assert trackers == {id(tracker)}  # never rebuilt
    assert hasattr(sampler.function, "__wrapped__")  # its sampler thread's CPU counts as metering
    sampler._timer.join(1)
    assert not sampler._timer.is_alive()  # and stopped with the monitor
    assert len(windows) >= 4 and all(energy_j > 0 for energy_j, _ in windows)
    assert monitor.source == expected_source
    assert metrics.energy.labels(**metrics.base, source=expected_source)._value.get() == pytest.approx(
        sum(energy_j for energy_j, _ in windows))
    # the windows cover the monitor's life but for the tracker's construction and a few ms per window
    assert wall_s - 0.25 < sum(seconds for _, seconds in windows) <= wall_s
