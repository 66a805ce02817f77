"""Does `greenlane serve` survive 1,000 concurrent-ish requests with bounded memory and no errors?

Starts the real server on 127.0.0.1 (the registry's champion by default, or --model-uri; the ServeConfig
defaults plus any flags after --), sends one warm-up request, then fires --requests greedy chat requests with up
to --concurrency in flight at once (a bounded asyncio/httpx client: every request is created at the start and
waits on a semaphore, each with a timeout, the whole run capped by --run-timeout-s). The prompt mix is
serving_modes.py's: distinct prompts from the shipped data, --repeat-share of them exact repeats (cacheable).

While the load runs, a thread samples the server's resident memory (psutil, on the server's PID) every 0.2 s.
Prints: responses by status (200, 4xx, 503 "overloaded" counted apart from other 5xx), client-side errors
(timeouts, dropped connections), requests unfinished at the cap, latency p50/p95/max of the 200s, throughput,
and RSS before the load, after each quarter of the requests completed, its peak (the sampled maximum and the
kernel's VmHWM) and after the load. Memory is bounded when it plateaus: the quarter-by-quarter RSS says whether
it still grows. Exits 1 when any request failed or did not finish (so it can gate a CI job); asserts nothing else.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/serving_survival.py [--requests 1000] [--concurrency 200]
        [--max-tokens 8] [--repeat-share 0.3] [--model-uri models:/NAME/V] [-- EXTRA SERVE FLAGS]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving_modes as sm  # noqa: E402  (server start/stop by PID and the prompt mix are shared)

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402


class RssSampler(threading.Thread):
    """Peak resident memory of one process, sampled every `every_s` until stopped."""

    def __init__(self, pid: int, every_s: float = 0.2):
        super().__init__(daemon=True)
        self.proc, self.every_s, self.peak = psutil.Process(pid), every_s, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop_event.wait(self.every_s)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


async def fire(url: str, model: str, prompts: list[str], concurrency: int, max_tokens: int, timeout_s: float,
               run_timeout_s: float, on_done) -> dict:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    texts_empty = 0

    async def send(client: httpx.AsyncClient, prompt: str) -> None:
        nonlocal texts_empty
        t0 = time.perf_counter()
        try:
            r = await client.post(f"{url}/v1/chat/completions", json=sm.chat_body(model, prompt, max_tokens),
                                  timeout=timeout_s)
            key = str(r.status_code)
            if r.status_code == 503 and "overloaded" in r.text:
                key = "503 overloaded"
            if r.status_code == 200:
                latencies.append(time.perf_counter() - t0)
                if not isinstance(r.json()["choices"][0]["message"]["content"], str):
                    texts_empty += 1
        except httpx.HTTPError as err:
            key = f"client {type(err).__name__}"
        statuses[key] = statuses.get(key, 0) + 1
        on_done()

    not_finished, wall = await sm.bounded(prompts, concurrency, run_timeout_s, send)
    return {"latencies_s": latencies, "statuses": statuses, "not_finished": not_finished, "wall_s": wall,
            "non_text": texts_empty}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200, help="requests in flight at most")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--repeat-share", type=float, default=0.3)
    parser.add_argument("--request-timeout-s", type=float, default=600)
    parser.add_argument("--run-timeout-s", type=float, default=1800)
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--tracking-uri", default=f"sqlite:///{sm.greenlane_home() / 'mlflow.db'}")
    parser.add_argument("--model-uri", help="default: the registry's champion-<target> version")
    parser.add_argument("--out", type=Path, default=sm.greenlane_home() / "serving_survival")
    parser.add_argument("serve_flags", nargs="*", help="extra `greenlane serve` flags, after --")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    if not args.model_uri:
        args.model_uri = sm.resolve_models(args.tracking_uri, args.target)[1]
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / f"server-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.log"
    prompts, n_repeats = sm.prompt_mix(args.requests, args.repeat_share, args.concurrency, seed=0)
    print(f"{args.model_uri}: {args.requests} requests ({n_repeats} repeats), {args.concurrency} in flight, "
          f"max_tokens {args.max_tokens}, serve flags {args.serve_flags or '(defaults)'}, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    proc, url = sm.start_server(args.model_uri, args.target, list(args.serve_flags), log)
    try:
        info = httpx.get(f"{url}/v1/models", timeout=10).json()["data"][0]
        httpx.post(f"{url}/v1/chat/completions", json=sm.chat_body(info["id"], "Say hi.", 4),
                   timeout=300).raise_for_status()
        server = psutil.Process(proc.pid)
        rss_before = server.memory_info().rss
        quarters: list[tuple[int, int]] = []
        done = 0

        def on_done() -> None:  # RSS each time another quarter of the requests has completed
            nonlocal done
            done += 1
            if done % max(1, args.requests // 4) == 0:
                quarters.append((done, server.memory_info().rss))

        sampler = RssSampler(proc.pid)
        sampler.start()
        res = asyncio.run(fire(url, info["id"], prompts, args.concurrency, args.max_tokens, args.request_timeout_s,
                               args.run_timeout_s, on_done))
        peak = sampler.stop()
        time.sleep(2)
        rss_after = server.memory_info().rss
        hwm = sm.peak_rss_mb(proc.pid)
        alive = proc.poll() is None and httpx.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        sm.stop_server(proc)
    mb = 1 / 2**20
    lat = np.array(res["latencies_s"]) * 1000
    ok = res["statuses"].get("200", 0)
    failed = args.requests - ok
    print(f"variant {info['variant']} ({info['runtime']}), load average now {os.getloadavg()[0]:.1f}")
    print(f"  responses by status: {dict(sorted(res['statuses'].items()))}; unfinished at the cap: "
          f"{res['not_finished']}; 200s without text: {res['non_text']}")
    if len(lat):
        print(f"  latency of the 200s: p50 {np.percentile(lat, 50):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms, "
              f"max {lat.max():.0f} ms; {ok / res['wall_s']:.2f} requests/s over {res['wall_s']:.0f} s")
    print(f"  server RSS: before {rss_before * mb:.0f} MB, after each quarter "
          f"{', '.join(f'{n}: {r * mb:.0f}' for n, r in quarters)} MB, peak {peak * mb:.0f} MB sampled "
          f"(VmHWM {hwm:.0f} MB), after {rss_after * mb:.0f} MB; server healthy after the load: {alive}")
    print(f"  {'SURVIVED' if failed == 0 and alive else 'FAILED'}: {ok}/{args.requests} answered 200")
    sys.exit(0 if failed == 0 and alive else 1)


if __name__ == "__main__":
    main()
