"""The three deployment modes of `greenlane serve`, measured by driving the real server on 127.0.0.1.

Modes (Daga et al.'s LLMOps study):
- baseline: the fp32 transformers baseline variant, no cache, no batching;
- model-optimized: the champion (e.g. onnx-int8 in ONNX Runtime GenAI), no cache, no batching;
- fully-optimized: the champion + the in-process LRU response cache + dynamic batching.

Both models come from the MLflow registry of a finished `greenlane run` (default: the store under the greenlane
home): the champion is `champion-<target>`, the baseline is the version tagged `variant=baseline` from the same
pipeline run. Each run starts a fresh server (so no run inherits another's cache or warm state), waits for
/health, sends one warm-up request, then N chat requests from a bounded asyncio client (at most --concurrency in
flight, closed loop, each with a timeout, the run stopped after --run-timeout-s), and stops the server by PID.

Prompt mix: distinct prompts (the shipped sentiment reviews under two instructions, plus the shipped chat
prompts), of which a share --repeat-share (default 30%) of the N requests are exact repeats of a prompt sent at
least 2x--concurrency requests earlier (so the first answer is usually finished when the repeat arrives), as
real traffic repeats questions. Every request is greedy (temperature 0), so every repeat is cacheable.

Figures per run, from the server's own /metrics before and after the run (energy and carbon counters with
their meter's source label, cache counters, the metering-overhead CPU counter) and from the client (latency,
wall time); server CPU time and peak RSS (VmHWM) from /proc. Per mode: the mean over runs with a 95% t
interval (scipy.stats). Prints the table and the ratios fully-optimized / baseline, writes results.json and
table.md under --out. Asserts nothing.

results.json is rewritten after every run, so a protocol cut short (the full one takes about 3 h on a 2-core VM)
keeps its finished runs; `--resume DIR` finishes it in DIR with the same protocol flags. Each run records when it
started, the CPU model and the load average, so runs made in different sittings say so.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/serving_modes.py [--requests 1000] [--runs 5] [--concurrency 8]
        [--max-tokens 32] [--repeat-share 0.3] [--modes baseline model-optimized fully-optimized]
        [--baseline-uri models:/NAME/V] [--champion-uri models:/NAME@champion-cpu] [--out DIR | --resume DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from scipy import stats  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tasks.config import greenlane_home  # noqa: E402

HOST = "127.0.0.1"  # load is only ever sent to this machine
MODES = {
    # server flags per mode, beyond --model-uri/--host/--port
    "baseline": ["--cache", "none", "--no-batching"],
    "model-optimized": ["--cache", "none", "--no-batching"],
    "fully-optimized": ["--cache", "lru", "--batching"],
}
STARTUP_TIMEOUT_S = 600  # downloading a version from the registry and loading it on a busy 2-core machine
TEMPLATES = ("Classify the sentiment of this review as positive, negative or neutral: {}",
             "Reply to this customer review in one friendly sentence: {}")


def prompt_pool() -> list[str]:
    """Distinct prompts from the data greenlane ships (no download)."""
    data = REPO / "tasks" / "data"
    reviews = [json.loads(line)["text"] for split in ("train", "eval")
               for line in (data / "sentiment" / f"{split}.jsonl").read_text().splitlines() if line.strip()]
    chat = [json.loads(line)["prompt"] for line in (data / "prompts.jsonl").read_text().splitlines() if line.strip()]
    return list(dict.fromkeys([t.format(r) for t in TEMPLATES for r in reviews] + chat))


def prompt_mix(n: int, repeat_share: float, gap: int, seed: int) -> tuple[list[str], int]:
    """N prompts, round(n x repeat_share) of them repeats of one sent at least `gap` positions earlier."""
    rng = random.Random(seed)
    pool = prompt_pool()
    repeats = set(rng.sample(range(gap, n), min(round(n * repeat_share), max(0, n - gap))))
    if n - len(repeats) > len(pool):
        raise SystemExit(f"--requests {n} needs {n - len(repeats)} distinct prompts; the shipped data has {len(pool)}")
    rng.shuffle(pool)
    fresh, out = iter(pool), []
    for i in range(n):
        out.append(out[rng.randrange(0, i - gap + 1)] if i in repeats else next(fresh))
    return out, len(repeats)


def resolve_models(tracking_uri: str, target: str) -> tuple[str, str, dict]:
    """(baseline URI, champion URI, facts): the champion alias and the baseline version of the same pipeline run."""
    from tasks.tracking.runs import client

    c = client(tracking_uri)
    names = [m.name for m in c.search_registered_models()]
    for name in names:
        try:
            champ = c.get_model_version_by_alias(name, f"champion-{target}")
        except Exception:  # noqa: BLE001 - MlflowException when this model has no such alias
            continue
        parent = c.get_run(champ.run_id).data.tags.get("mlflow.parentRunId")
        for v in c.search_model_versions(f"name='{name}'"):
            if v.tags.get("variant") == "baseline" and c.get_run(v.run_id).data.tags.get("mlflow.parentRunId") == parent:
                facts = {"registered_model": name, "champion_version": champ.version,
                         "champion_variant": champ.tags.get("variant"), "baseline_version": v.version}
                return f"models:/{name}/{v.version}", f"models:/{name}/{champ.version}", facts
        raise SystemExit(f"{name}@champion-{target} has no baseline version from the same run; pass --baseline-uri")
    raise SystemExit(f"no registered model in {tracking_uri} has alias champion-{target}: run `greenlane run` first")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(model_uri: str, target: str, flags: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "tasks.cli", "serve", "--alias", f"champion-{target}", "--model-uri", model_uri,
           "--host", HOST, "--port", str(port), *flags]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:  # a SIGTERM or Ctrl-C while the server loads must stop it too, not orphan it
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode} during startup: {' '.join(cmd)}\n"
                                 f"{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    return proc, url
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise SystemExit(f"server not healthy after {STARTUP_TIMEOUT_S} s: {log}")
    except BaseException:
        stop_server(proc)
        raise


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's own process group (it was started in a new session), SIGKILL after 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples: dict, name: str, **match: str) -> float:
    return sum(v for (n, labels), v in samples.items()
               if n == name and all(dict(labels).get(k) == want for k, want in match.items()))


def label_values(samples: dict, name: str, label: str) -> list[str]:
    return sorted({dict(labels)[label] for (n, labels), _ in samples.items() if n == name and label in dict(labels)})


def at_window_boundary(url: str, window_s: float) -> dict:
    """Scrape just after the energy monitor closed a window: the energy counters advance once per window, so
    deltas between two boundary scrapes cover whole windows (the run, plus under one window of idle tail)."""
    first = total(scrape(url), "greenlane_energy_joules_total")
    deadline = time.monotonic() + 3 * window_s + 10
    while time.monotonic() < deadline:
        samples = scrape(url)
        if total(samples, "greenlane_energy_joules_total") != first:
            return samples
        time.sleep(0.05)
    raise SystemExit(f"the energy counter did not advance within {3 * window_s + 10:.0f} s: is the meter working?")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of the process and its waited-for children (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def chat_body(model: str, prompt: str, max_tokens: int) -> dict:
    """One greedy chat request (temperature 0: what the benchmark measured and what the cache can answer)."""
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0}


async def bounded(prompts: list[str], concurrency: int, run_timeout_s: float, send) -> tuple[int, float]:
    """Closed loop: every prompt is a task waiting on a semaphore, so at most `concurrency` of
    `send(client, prompt)` run at once; the run is cancelled after run_timeout_s. Returns (requests unfinished
    at the cap, wall seconds)."""
    sem = asyncio.Semaphore(concurrency)

    async def one(client: httpx.AsyncClient, prompt: str) -> None:
        async with sem:
            await send(client, prompt)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        tasks = [asyncio.create_task(one(client, p)) for p in prompts]
        t0 = time.perf_counter()
        _, pending = await asyncio.wait(tasks, timeout=run_timeout_s)
        for t in pending:
            t.cancel()
        return len(pending), time.perf_counter() - t0


async def drive(url: str, model: str, prompts: list[str], concurrency: int, max_tokens: int,
                timeout_s: float, run_timeout_s: float) -> dict:
    """Latencies (s) of the answered requests and error counts."""
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def send(client: httpx.AsyncClient, prompt: str) -> None:
        t0 = time.perf_counter()
        try:
            r = await client.post(f"{url}/v1/chat/completions", json=chat_body(model, prompt, max_tokens),
                                  timeout=timeout_s)
            key = None if r.status_code == 200 else f"HTTP {r.status_code}"
        except httpx.HTTPError as err:
            key = type(err).__name__
        if key is None:
            latencies.append(time.perf_counter() - t0)
        else:
            errors[key] = errors.get(key, 0) + 1

    not_finished, wall = await bounded(prompts, concurrency, run_timeout_s, send)
    return {"latencies_s": latencies, "errors": errors, "not_finished": not_finished, "wall_s": wall}


def one_run(mode: str, model_uri: str, args, seed: int, log: Path) -> dict:
    prompts, n_repeats = prompt_mix(args.requests, args.repeat_share, 2 * args.concurrency, seed)
    flags = MODES[mode] + ["--energy-window-s", str(args.energy_window_s)]
    if args.threads:
        flags += ["--threads", str(args.threads)]
    if mode == "fully-optimized":
        flags += ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    load_before = os.getloadavg()[0]
    proc, url = start_server(model_uri, args.target, flags, log)
    try:
        info = httpx.get(f"{url}/v1/models", timeout=10).json()["data"][0]
        model = info["id"]
        httpx.post(f"{url}/v1/chat/completions", json=chat_body(model, "Warm-up: say hi.", 4),
                   timeout=args.request_timeout_s).raise_for_status()
        before = at_window_boundary(url, args.energy_window_s)
        cpu0 = process_cpu_s(proc.pid)
        load = asyncio.run(drive(url, model, prompts, args.concurrency, args.max_tokens, args.request_timeout_s,
                                 args.run_timeout_s))
        after = at_window_boundary(url, args.energy_window_s)
        cpu1 = process_cpu_s(proc.pid)
        rss = peak_rss_mb(proc.pid)
    finally:
        stop_server(proc)

    def delta(name: str, **match: str) -> float:
        return total(after, name, **match) - total(before, name, **match)

    ok = len(load["latencies_s"])
    hits, misses = delta("greenlane_cache_requests_total", result="hit"), delta("greenlane_cache_requests_total", result="miss")
    server_cpu = cpu1 - cpu0
    lat = load["latencies_s"]
    return {
        "mode": mode, "model_uri": model_uri, "variant": info["variant"], "runtime": info["runtime"], "seed": seed, "requests": args.requests, "repeats_sent": n_repeats,
        "ok": ok, "errors": load["errors"], "not_finished": load["not_finished"], "wall_s": load["wall_s"],
        "energy_source": ",".join(label_values(after, "greenlane_energy_joules_total", "source")),
        "j_per_request": delta("greenlane_energy_joules_total") / ok if ok else float("nan"),
        "gco2e_per_request": delta("greenlane_carbon_gco2e_total") / ok if ok else float("nan"),
        "p50_ms": 1000 * float(np.percentile(lat, 50)) if lat else float("nan"),
        "p95_ms": 1000 * float(np.percentile(lat, 95)) if lat else float("nan"),
        "throughput_rps": ok / load["wall_s"],
        "tokens_out_per_s": delta("greenlane_tokens_total", direction="out") / load["wall_s"],
        "cache_hit_ratio": hits / (hits + misses) if hits + misses else None,
        "mean_batch": (delta("greenlane_batch_size_sum") / delta("greenlane_batch_size_count")
                       if delta("greenlane_batch_size_count") else None),
        "server_cpu_s": server_cpu,
        # measured, unlike a TDP x load estimate: the server process's own CPU time (not the client's)
        "server_cpu_s_per_request": server_cpu / ok if ok else float("nan"),
        "meter_overhead_share": delta("greenlane_meter_overhead_cpu_seconds_total") / server_cpu if server_cpu else None,
        "peak_rss_mb": rss,
        "started_utc": started, "cpu_model": cpu_model(), "load_average_before": load_before,
    }


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def ci95(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t interval over runs (nan bounds for a single run)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    sem = stats.sem(values)
    if sem == 0:  # identical runs (e.g. a hit ratio of exactly 0.3 every time): the interval is the point
        return mean, mean, mean
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=sem)
    return mean, float(lo), float(hi)


METRICS = [("j_per_request", "J/request", "{:.2f}"), ("gco2e_per_request", "gCO2e/request", "{:.2e}"),
           ("server_cpu_s_per_request", "server CPU s/request", "{:.3f}"), ("p50_ms", "p50 ms", "{:.0f}"), ("p95_ms", "p95 ms", "{:.0f}"), ("throughput_rps", "req/s", "{:.2f}"),
           ("cache_hit_ratio", "cache hit ratio", "{:.2f}")]


def summarize(runs: list[dict]) -> dict:
    out = {"runs": len(runs), "variant": f"{runs[0]['variant']} ({runs[0]['runtime']})", "energy_source": sorted({r["energy_source"] for r in runs}),
           "errors": sum(sum(r["errors"].values()) + r["not_finished"] for r in runs),
           "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
           "meter_overhead_share_max": max((r["meter_overhead_share"] or 0) for r in runs)}
    for key, _, _ in METRICS + [("mean_batch", "", "")]:
        vals = [r[key] for r in runs if r[key] is not None]
        out[key] = ci95(vals) if vals else None
    return out


def table(summary: dict[str, dict]) -> str:
    head = "| mode | variant (runtime) | " + " | ".join(label for _, label, _ in METRICS) + " | energy source | errors | peak RSS MB |"
    lines = [head, "|---|---|" + "---:|" * len(METRICS) + "---|---:|---:|"]
    for mode, s in summary.items():
        cells = []
        for key, _, fmt in METRICS:
            if s[key] is None:
                cells.append("n/a")
                continue
            mean, lo, hi = s[key]
            cells.append(fmt.format(mean) + ("" if lo != lo else f" [{fmt.format(lo)}, {fmt.format(hi)}]"))
        lines.append(f"| {mode} | {s['variant']} | " + " | ".join(cells) +
                     f" | {', '.join(s['energy_source'])} | {s['errors']} | {s['peak_rss_mb_max']:.0f} |")
    return "\n".join(lines)


PROTOCOL = ("requests", "runs", "modes", "concurrency", "max_tokens", "repeat_share", "max_batch", "max_wait_ms",
            "energy_window_s", "threads", "request_timeout_s", "target")


def protocol(args, uris: dict) -> dict:
    """What makes two sittings' runs one protocol: the flags that shape the load and the server, and the models."""
    return {**{k: getattr(args, k) for k in PROTOCOL}, "uris": uris}


def resumed_runs(args, uris: dict) -> dict[str, list[dict]]:
    """The finished runs in --resume DIR, refused when that protocol differs from this one."""
    path = args.resume / "results.json"
    if not path.is_file():
        raise SystemExit(f"--resume {args.resume}: no results.json there (a protocol's directory under --out)")
    saved = json.loads(path.read_text())
    want = json.loads(json.dumps(protocol(args, uris)))  # through JSON, as saved (tuples become lists)
    diff = {k: (saved["args"].get(k), v) for k, v in want.items() if saved["args"].get(k) != v}
    if diff:
        raise SystemExit(f"--resume {args.resume}: the saved protocol differs from these flags "
                         f"(name: (saved, now)): {diff}")
    return {m: saved["runs"].get(m, []) for m in args.modes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="N requests per run")
    parser.add_argument("--runs", type=int, default=5, help="R independent runs per mode (a fresh server each)")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at most")
    parser.add_argument("--max-tokens", type=int, default=32, help="max_tokens of every request")
    parser.add_argument("--repeat-share", type=float, default=0.3, help="share of requests that repeat a prompt")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=20)
    parser.add_argument("--energy-window-s", type=float, default=2.0,
                        help="the server's meter window: J/request includes under one window of idle tail")
    parser.add_argument("--threads", type=int, help="the runtime's compute threads (default: the server's)")
    parser.add_argument("--request-timeout-s", type=float, default=300)
    parser.add_argument("--run-timeout-s", type=float, default=3600, help="a run stops sending after this")
    parser.add_argument("--target", default="cpu", help="whose champion alias to serve")
    parser.add_argument("--tracking-uri", default=f"sqlite:///{greenlane_home() / 'mlflow.db'}")
    parser.add_argument("--baseline-uri", help="default: the baseline version of the champion's pipeline run")
    parser.add_argument("--champion-uri", help="default: the registry's champion-<target> version")
    parser.add_argument("--out", type=Path, default=greenlane_home() / "serving_modes")
    parser.add_argument("--resume", type=Path, metavar="DIR",
                        help="finish the interrupted protocol whose results.json is in DIR (same protocol flags)")
    args = parser.parse_args()
    # a SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the running server is stopped by its PID, not orphaned
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if not 0 <= args.repeat_share < 1 or args.requests < 1 or args.runs < 1 or args.concurrency < 1:
        parser.error("need --requests >= 1, --runs >= 1, --concurrency >= 1 and 0 <= --repeat-share < 1")
    os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri  # what the server resolves the model URIs in

    facts = {}
    if not (args.baseline_uri and args.champion_uri):
        base, champ, facts = resolve_models(args.tracking_uri, args.target)
        args.baseline_uri, args.champion_uri = args.baseline_uri or base, args.champion_uri or champ
    uris = {"baseline": args.baseline_uri, "model-optimized": args.champion_uri, "fully-optimized": args.champion_uri}
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.resume or args.out / stamp
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = resumed_runs(args, uris) if args.resume else {m: [] for m in args.modes}
    print(f"{stamp}: {args.requests} requests x {args.runs} runs x {len(args.modes)} modes, concurrency "
          f"{args.concurrency}, max_tokens {args.max_tokens}, repeat share {args.repeat_share:.0%}, "
          f"load average {os.getloadavg()[0]:.1f}; {facts or uris}; "
          f"{sum(map(len, runs.values()))} runs already in {out}", flush=True)

    def save(complete: bool) -> dict:
        summary = {m: summarize(rs) for m, rs in runs.items() if rs}
        tmp = out / "results.json.tmp"  # then renamed: a kill mid-write must not lose the runs already saved
        tmp.write_text(json.dumps({"args": protocol(args, uris), "facts": facts, "complete": complete,
                                   "runs": runs, "summary": summary}, indent=2))
        os.replace(tmp, out / "results.json")
        return summary

    for r in range(args.runs):  # modes interleaved per run, so drift on a shared machine hits every mode alike
        for mode in args.modes:
            if r < len(runs[mode]):
                continue  # finished in an earlier sitting (--resume)
            rec = one_run(mode, uris[mode], args, seed=r, log=out / f"server-{mode}-{r}.log")
            runs[mode].append(rec)
            save(complete=False)
            print(f"  run {r} {mode}: {rec['ok']} ok, errors {rec['errors']}, {rec['wall_s']:.0f} s, "
                  f"{rec['j_per_request']:.2f} J/request ({rec['energy_source']}), p95 {rec['p95_ms']:.0f} ms, "
                  f"hit ratio {rec['cache_hit_ratio']}, load average {os.getloadavg()[0]:.1f}", flush=True)

    summary = save(complete=True)
    text = table(summary)
    lines = [text, ""]
    for mode, goal in (("model-optimized", ""), ("fully-optimized", " (issue 14: J <= 0.25, aim 0.125; p95 <= 1)")):
        if "baseline" in summary and mode in summary:
            b, x = summary["baseline"], summary[mode]
            ratio = {key: x[key][0] / b[key][0] for key in ("j_per_request", "p95_ms", "server_cpu_s_per_request")}
            lines.append(f"{mode} / baseline, ratio of the means over runs: J/request {ratio['j_per_request']:.3f}, "
                         f"p95 {ratio['p95_ms']:.3f}, server CPU s/request {ratio['server_cpu_s_per_request']:.3f}"
                         + goal)
    for mode, s in summary.items():
        lines.append(f"{mode}: metering overhead at most {s['meter_overhead_share_max']:.2%} of the server's CPU time "
                     f"(target <= 1%), peak RSS {s['peak_rss_mb_max']:.0f} MB, {s['errors']} errors/unfinished")
    report = "\n".join(lines)
    print(report)
    (out / "table.md").write_text(report + "\n")
    print(f"wrote {out / 'table.md'} and {out / 'results.json'}")


if __name__ == "__main__":
    main()
