"""Prometheus metrics of the server (names fixed by the serving/monitoring contract), and its energy monitor.

Every series carries `model`, `model_version` and `target`. Energy comes from the target's own meter (the one
the benchmark uses: a hardware counter, or an `estimate:...` labelled so), read in consecutive windows of
`serve.energy_window_s` over the serving process's whole life, idle time included; carbon is the benchmark's
accounting (operational on the window's joules, embodied on its seconds). The live J per 1k tokens counts
only windows in which the model generated tokens, per generated token (cache hits generate none), which is
how the benchmark's figure beside it was made. The metering's own CPU time is counted, so its overhead can be
set against `process_cpu_seconds_total`.
"""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
BASE = ("model", "model_version", "target")
UTILIZATION_SAMPLE_S = 5.0


class ServeMetrics:
    """The server's metric families in their own registry (plus the process collector: CPU seconds, memory)."""

    def __init__(self, model: str, version: str, target: str):
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        self.base = {"model": model, "model_version": str(version), "target": target}
        self.requests = Counter("greenlane_requests", "HTTP requests by endpoint and status code",
                                [*BASE, "endpoint", "status"], registry=r)
        self.tokens = Counter("greenlane_tokens", "Tokens in (prompt) and out (completion), cache hits included",
                              [*BASE, "direction"], registry=r)
        self.ttft = Histogram("greenlane_ttft_seconds", "Arrival to first generated token (queue + prefill + one "
                              "step); a cache hit's is its response time", BASE, buckets=LATENCY_BUCKETS, registry=r)
        self.latency = Histogram("greenlane_request_seconds", "End-to-end request latency",
                                 BASE, buckets=LATENCY_BUCKETS, registry=r)
        self.cache = Counter("greenlane_cache_requests", "Response-cache lookups of deterministic requests",
                             [*BASE, "result"], registry=r)
        self.batch = Histogram("greenlane_batch_size", "Requests per runtime call", BASE, buckets=BATCH_BUCKETS,
                               registry=r)
        self.energy = Counter("greenlane_energy_joules", "Energy of the target's meter over the serving process's "
                              "life, joules", [*BASE, "source"], registry=r)
        self.carbon = Counter("greenlane_carbon_gco2e", "Operational + embodied carbon of that energy and time, "
                              "grams CO2e", [*BASE, "source"], registry=r)
        self.live = Gauge("greenlane_energy_j_per_1k_tokens", "Joules per 1,000 generated tokens, over the "
                          "windows that generated tokens", [*BASE, "source"], registry=r)
        self.benchmark = Gauge("greenlane_benchmark_energy_j_per_1k_tokens", "energy_j_per_1k_tokens the "
                               "benchmark logged for this model version", [*BASE, "source"], registry=r)
        self.overhead = Counter("greenlane_meter_overhead_cpu_seconds", "CPU seconds spent metering energy "
                                "(meter calls, its sampling threads, carbon arithmetic)", BASE, registry=r)
        self.config = Info("greenlane_serve", "Serving knobs and the runtime", BASE, registry=r)
        self.overhead.labels(**self.base)  # present from the start, at 0
        self._lock = threading.Lock()
        self._generated = 0  # tokens the model generated since the energy monitor's last window

    # --- called by the API and the engine ----------------------------------------------------------------------

    def request(self, endpoint: str, status: int) -> None:
        self.requests.labels(**self.base, endpoint=endpoint, status=str(status)).inc()

    def served(self, prompt_tokens: int, completion_tokens: int, ttft_s: float, total_s: float) -> None:
        self.tokens.labels(**self.base, direction="in").inc(prompt_tokens)
        self.tokens.labels(**self.base, direction="out").inc(completion_tokens)
        self.ttft.labels(**self.base).observe(ttft_s)
        self.latency.labels(**self.base).observe(total_s)

    def cache_lookup(self, hit: bool) -> None:
        self.cache.labels(**self.base, result="hit" if hit else "miss").inc()

    def runtime_call(self, size: int, generated_tokens: int) -> None:
        self.batch.labels(**self.base).observe(size)
        with self._lock:
            self._generated += generated_tokens

    def take_generated(self) -> int:
        with self._lock:
            n, self._generated = self._generated, 0
            return n

    def set_benchmark(self, j_per_1k_tokens: float | None, source: str | None) -> None:
        if j_per_1k_tokens is not None:
            self.benchmark.labels(**self.base, source=source or "unknown").set(j_per_1k_tokens)


class EnergyMonitor:
    """Reads `meter` in consecutive windows on its own thread and feeds the energy, carbon and live J/1k series.

    A meter with `windowed()` (codecarbon) is read through what that returns: `start()` once, `lap()` closing
    one window and opening the next, `stop()` at the end, so nothing is rebuilt per window. Any other meter is
    stopped and started again at each window's end. `footprint(energy_j, seconds) -> grams` is the carbon
    accounting of the target.
    """

    def __init__(self, meter, metrics: ServeMetrics, footprint, window_s: float):
        meter = meter.windowed() if hasattr(meter, "windowed") else meter
        self.meter, self.metrics, self.footprint, self.window_s = meter, metrics, footprint, window_s
        self.source: str | None = None
        self._energy_j = self._tokens = 0.0  # over windows that generated tokens: the live J/1k
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="greenlane-energy", daemon=True)
        self._ident: int | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Close the last window (so the counters cover the process to its end) and stop."""
        self._stop.set()
        self._thread.join(max(30.0, 3 * self.window_s))

    def _loop(self) -> None:
        self._ident = threading.get_ident()
        cpu0 = time.thread_time()
        self._start_meter()
        self._account(time.thread_time() - cpu0)
        while not self._stop.wait(self.window_s):
            self._window(restart=True)
        self._window(restart=False)

    def _start_meter(self) -> None:
        if hasattr(self.meter, "measure_power_secs"):  # a tracker started per window: integrate once per window
            self.meter.measure_power_secs = max(self.meter.measure_power_secs, self.window_s)
        self.meter.start()
        # codecarbon also samples CPU load every second on a thread of its own (psutil over every child process:
        # ~5-30 ms of CPU a time here, several % of a core). Its samples average utilization since the previous
        # one, so sampling every UTILIZATION_SAMPLE_S estimates the same mean for a fraction of the CPU.
        monitor = getattr(getattr(self.meter, "_tracker", None), "_scheduler_monitor_power", None)
        if monitor is not None and hasattr(monitor, "interval"):
            monitor.interval = max(monitor.interval, min(UTILIZATION_SAMPLE_S, self.window_s))
        for sampler in _samplers(self.meter):  # the meter's own sampling threads count as overhead too
            owner, attr = sampler
            setattr(owner, attr, self._timed(getattr(owner, attr)))

    def _window(self, restart: bool) -> None:
        cpu0 = time.thread_time()
        try:
            if restart and hasattr(self.meter, "lap"):
                reading = self.meter.lap()
            else:
                reading = self.meter.stop()
                if restart:
                    self._start_meter()
        except Exception:  # a meter failing mid-serving must not take the server down; the gap is logged
            log.exception("energy meter window failed; energy for this window is not counted")
            if restart:
                try:
                    self._start_meter()
                except Exception:
                    log.exception("energy meter cannot restart; the energy series stop here")
                    self._stop.set()
            self._account(time.thread_time() - cpu0)
            return
        tokens = self.metrics.take_generated()
        grams = self.footprint(reading.energy_j, reading.duration_s)
        m, base = self.metrics, self.metrics.base
        self.source = reading.source
        m.energy.labels(**base, source=reading.source).inc(reading.energy_j)
        m.carbon.labels(**base, source=reading.source).inc(grams)
        if tokens:
            self._energy_j += reading.energy_j
            self._tokens += tokens
            m.live.labels(**base, source=reading.source).set(self._energy_j / self._tokens * 1000.0)
        self._account(time.thread_time() - cpu0)

    def _account(self, cpu_s: float) -> None:
        self.metrics.overhead.labels(**self.metrics.base).inc(max(cpu_s, 0.0))

    def _timed(self, func):
        def timed(*args, **kwargs):
            if threading.get_ident() == self._ident:  # already inside this thread's own CPU count
                return func(*args, **kwargs)
            cpu0 = time.thread_time()
            try:
                return func(*args, **kwargs)
            finally:
                self._account(time.thread_time() - cpu0)

        timed.__wrapped__ = func
        return timed


def _samplers(meter) -> list[tuple[object, str]]:
    """(object, attribute) of the functions a started meter runs on threads of its own: codecarbon's periodic
    schedulers, the power pollers of nvml and jetson (tasks/measurement/meters/_poll.py)."""
    found = []
    tracker = getattr(meter, "_tracker", None)
    for name in ("_scheduler", "_scheduler_monitor_power"):
        scheduler = getattr(tracker, name, None)
        if scheduler is not None and callable(getattr(scheduler, "function", None)):
            found.append((scheduler, "function"))
    poller = getattr(meter, "poller", None)
    if poller is not None and getattr(poller, "threaded", False):
        if not hasattr(poller.sample, "__wrapped__"):  # one poller per meter, started again each window
            found.append((poller, "sample"))
    return found
