"""Assembling a serving process: resolve the registered version, load it in its runtime, wire cache, batcher,
metrics and energy monitor, then run uvicorn until SIGTERM/SIGINT (uvicorn's graceful shutdown closes all of it:
the energy counters get their last window, the model is freed)."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
from pathlib import Path

from tasks.config import GreenlaneConfig, ServeConfig
from tasks.errors import GreenlaneError
from tasks.serving.app import Server, create_app
from tasks.serving.batching import Batcher
from tasks.serving.cache import make_cache
from tasks.serving.engine import Engine, ServedModel
from tasks.serving.metrics import EnergyMonitor, ServeMetrics

log = logging.getLogger(__name__)


def target_of(alias: str, cfg: GreenlaneConfig) -> str:
    """The target an alias names: `champion-<target>`, or `champion` for the default target."""
    if alias == "champion":
        return cfg.default_target
    match = re.fullmatch(r"champion-(.+)", alias)
    if match is None or match.group(1) not in cfg.targets:
        raise GreenlaneError(f"--alias {alias!r} is not champion-<target> for a configured target "
                             f"({', '.join('champion-' + t for t in cfg.targets)}, or champion)")
    return match.group(1)


def check_bind(serve: ServeConfig, insecure: bool) -> str | None:
    """The API key from the environment (None: no auth); refuses to expose an unauthenticated server."""
    key = None
    if serve.api_key_env:
        key = os.environ.get(serve.api_key_env, "")
        if not key.strip():
            raise GreenlaneError(f"serve.api_key_env is {serve.api_key_env} but that environment variable is empty; "
                                 "export the token, or drop api_key_env to serve without auth on 127.0.0.1")
        key = key.strip()
    try:
        loopback = ipaddress.ip_address(serve.host).is_loopback
    except ValueError:
        loopback = serve.host == "localhost"
    if not loopback and key is None and not insecure:
        raise GreenlaneError(f"--host {serve.host} would expose the model without auth; set serve.api_key_env "
                             "(a bearer token), bind 127.0.0.1, or pass --insecure")
    with socket.socket(socket.AF_INET6 if ":" in serve.host else socket.AF_INET) as probe:
        try:  # before minutes of model loading, not after
            probe.bind((serve.host, serve.port))
        except OSError as err:
            raise GreenlaneError(f"cannot listen on {serve.host}:{serve.port}: {err.strerror}; pick another --port"
                                 ) from None
    return key


def open_server(cfg: GreenlaneConfig, alias: str, model_uri: str | None, workdir: Path, insecure: bool = False
                ) -> Server:
    """Everything `greenlane serve` runs, loaded and started (the energy monitor is running on return)."""
    from tasks import runtimes
    from tasks.carbon.accounting import J_PER_KWH, footprint
    from tasks.measurement.benchmark import make_target_meter
    from tasks.tracking.queries import registry_location
    from tasks.tracking.serving import fetch_servable

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a server log, not a terminal
    serve = cfg.serve
    target_name = target_of(alias, cfg)
    target = cfg.targets[target_name]
    api_key = check_bind(serve, insecure)
    uri, name = registry_location(cfg)
    model_uri = model_uri or f"models:/{name}@{alias}"
    found = fetch_servable(uri, model_uri, workdir / "model")
    runtime_name = runtimes.runtime_of(found["variant_dir"])
    if runtime_name not in target.served_runtimes():
        raise GreenlaneError(f"{model_uri} runs in {runtime_name}, which target {target_name} does not serve "
                             f"(its runtimes: {', '.join(target.served_runtimes())})")
    model = ServedModel(
        name=found["name"], version=found["version"], target=target_name, model_uri=model_uri,
        variant=found["tags"].get("variant", "?"), runtime=runtime_name, variant_dir=found["variant_dir"],
        benchmark_j_per_1k_tokens=found["metrics"].get("energy_j_per_1k_tokens"),
        benchmark_energy_source=found["tags"].get("energy_source"))
    settings = serve.model_dump(exclude={"host", "port", "api_key_env", "redis_url"})
    settings.update(auth=api_key is not None, redis=bool(serve.redis_url) and serve.cache == "redis")
    if not serve.batching:  # requests still reach the model through the one worker thread, one at a time
        settings.update(max_batch=1, max_wait_ms=0.0)

    metrics = ServeMetrics(model.name, model.version, target_name)
    metrics.set_benchmark(model.benchmark_j_per_1k_tokens, model.benchmark_energy_source)
    cache = make_cache(serve.cache, serve.cache_size, serve.redis_url, serve.cache_ttl_s)
    runtime = runtimes.load(model.variant_dir, target.device, serve.threads, runtime=runtime_name)
    engine = Engine(runtime, model, on_batch=metrics.runtime_call)
    metrics.config.labels(**metrics.base).info(
        {**{k: str(v) for k, v in settings.items()}, "runtime": runtime_name, "variant": model.variant,
         "runtime_batches": str(engine.batches)})
    batcher = Batcher(engine.serve, settings["max_batch"], settings["max_wait_ms"], serve.max_queue)

    def grams(energy_j: float, seconds: float) -> float:  # the benchmark's accounting, per meter window
        return footprint(energy_j / J_PER_KWH, seconds, target.region, target.hardware, target.pue,
                         target.lifetime_years).total_g

    monitor = EnergyMonitor(make_target_meter(target, workdir / "meter"), metrics, grams, serve.energy_window_s)
    monitor.start()
    model_id = alias if model_uri.endswith(f"@{alias}") else f"{model.name}/{model.version}"
    return Server(engine, batcher, cache, metrics, monitor, settings, model_id, api_key)


def serve_forever(cfg: GreenlaneConfig, alias: str, model_uri: str | None, insecure: bool = False,
                  pid_file: Path | None = None) -> None:
    """Load, then serve on cfg.serve.host:port until stopped (SIGTERM or SIGINT)."""
    import uvicorn

    workdir = Path(tempfile.mkdtemp(prefix="greenlane-serve-"))
    try:
        server = open_server(cfg, alias, model_uri, workdir, insecure)
        app = create_app(server)
        if pid_file is not None:
            pid_file.write_text(f"{os.getpid()}\n")
        log.warning("greenlane serve: %s (%s v%s, %s) on http://%s:%d", server.model_id, server.engine.model.name,
                    server.engine.model.version, server.engine.model.runtime, cfg.serve.host, cfg.serve.port)
        # uvicorn re-raises the signal that stopped it once its graceful shutdown is done; a handler that just
        # notes it lets this function clean up and the process exit 0 (the default SIGTERM action would kill it).
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: log.info("stopped by signal %d", signum))
        uvicorn.run(app, host=cfg.serve.host, port=cfg.serve.port, log_level="warning", access_log=False,
                    timeout_graceful_shutdown=30)
    finally:
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
