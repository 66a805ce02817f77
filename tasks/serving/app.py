"""The HTTP API: OpenAI's /v1/completions, /v1/chat/completions and /v1/models, plus /health and /metrics.

A request is validated and bounded, answered from the response cache when it is deterministic and cached,
else queued for the model (tasks/serving/batching.py) and awaited without blocking the event loop. Every
failure is an OpenAI-shaped JSON error: 4xx naming the problem for a bad request, 503 when the queue is
full, 500 (with no traceback) for a fault of the server's own. /v1/* require the bearer token when
`serve.api_key_env` names one; /health and /metrics stay open for probes and Prometheus.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tasks.serving.batching import Batcher, Job, QueueFull
from tasks.serving.cache import ResponseCache, cache_key
from tasks.serving.engine import BadRequest, Engine
from tasks.serving.metrics import EnergyMonitor, ServeMetrics
from tasks.serving.openai import (ApiError, ChatRequest, CompletionRequest, apply_stop, chat_response,
                                  completion_response, read_request)

log = logging.getLogger(__name__)
ENDPOINTS = {"/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics"}


@dataclass
class Server:
    """Everything one serving process holds; `create_app` wires it to routes and closes it at shutdown."""

    engine: Engine
    batcher: Batcher
    cache: ResponseCache | None
    metrics: ServeMetrics
    monitor: EnergyMonitor | None
    settings: dict
    """The serve knobs in effect (reported by /health, /v1/models and the greenlane_serve_info metric)."""
    model_id: str
    """The id /v1/models lists (the alias served, or name/version)."""
    api_key: str | None = None
    started: float = 0.0

    @property
    def accepted_ids(self) -> set[str]:
        m = self.engine.model
        return {self.model_id, m.name, f"{m.name}/{m.version}", m.model_uri}

    def close(self) -> None:
        self.batcher.close()
        if self.monitor is not None:
            self.monitor.stop()
        if self.cache is not None:
            self.cache.close()
        self.engine.close()


class _CountRequests:
    """ASGI middleware counting every response by endpoint (known paths only: bounded labels) and status."""

    def __init__(self, app, metrics: ServeMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"

        started = False

        async def counting_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                self.metrics.request(endpoint, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:  # answered as a 500 by the outermost error middleware, outside this one
            if not started:
                self.metrics.request(endpoint, 500)
            raise


def create_app(server: Server) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app):
        server.started = time.time()
        try:
            yield
        finally:
            await asyncio.to_thread(server.close)

    app = FastAPI(title="greenlane serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_CountRequests, metrics=server.metrics)
    cfg, model = server.settings, server.engine.model
    limit_bytes = 6 * cfg["max_prompt_chars"] + 65536  # JSON may escape a character as \uXXXX, 6 bytes

    @app.exception_handler(ApiError)
    async def api_error(request, err: ApiError):
        return err.response()

    @app.exception_handler(404)
    async def not_found(request, err):
        return ApiError(404, f"no route {request.url.path}; see /v1/models and /health", code="not_found").response()

    @app.exception_handler(405)
    async def wrong_method(request, err):
        return ApiError(405, f"{request.method} is not allowed on {request.url.path}").response()

    @app.exception_handler(Exception)
    async def internal_error(request, err: Exception):
        log.error("internal error on %s: %r", request.url.path, err)
        return ApiError(500, f"internal error ({type(err).__name__}); see the server log", type="server_error"
                        ).response()

    def authorize(request: Request) -> None:
        if server.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), server.api_key.encode()):
            raise ApiError(401, "missing or wrong API key: send Authorization: Bearer <key>", code="invalid_api_key")

    def check(req) -> int:
        if req.model is not None and req.model not in server.accepted_ids:
            raise ApiError(404, f"model {req.model!r} is not served here; this server serves {server.model_id!r}",
                           param="model", code="model_not_found")
        max_tokens = getattr(req, "max_completion_tokens", None) or req.max_tokens or cfg["default_max_tokens"]
        if max_tokens > cfg["max_tokens_limit"]:
            raise ApiError(400, f"max_tokens {max_tokens} exceeds this server's limit of {cfg['max_tokens_limit']} "
                                "(serve.max_tokens_limit)", param="max_tokens")
        return max_tokens

    def check_chars(n: int) -> None:
        if n > cfg["max_prompt_chars"]:
            raise ApiError(400, f"the prompt is {n} characters, over this server's limit of {cfg['max_prompt_chars']} "
                                "(serve.max_prompt_chars)", param="prompt")

    def encode(fn, *args) -> list[int]:
        try:
            return fn(*args)
        except BadRequest as err:
            raise ApiError(400, str(err)) from None

    async def cache_io(fn, *args):
        """Redis calls block on the network: off the event loop. The in-process LRU is a dict lookup."""
        return await asyncio.to_thread(fn, *args) if server.cache.kind == "redis" else fn(*args)

    async def answer(ids: list[int], key_request: dict, max_tokens: int, req, t0: float) -> tuple[dict, int]:
        """{text, finish_reason, completion_tokens} for one prompt, and its prompt tokens."""
        try:
            server.engine.check_fits(ids, max_tokens)
        except BadRequest as err:
            raise ApiError(400, str(err), param="max_tokens") from None
        key = None
        if server.cache is not None and req.temperature == 0:
            key = cache_key(model.name, model.version, {**key_request, "max_tokens": max_tokens, "stop": req.stop})
            hit = await cache_io(server.cache.get, key)
            server.metrics.cache_lookup(hit is not None)
            if hit is not None:
                elapsed = time.perf_counter() - t0
                server.metrics.served(len(ids), hit["completion_tokens"], elapsed, elapsed)
                return hit, len(ids)
        job = Job(ids, max_tokens, req.temperature, req.seed, arrived=t0)
        try:
            generation = await asyncio.wrap_future(server.batcher.submit(job))
        except QueueFull as err:
            raise ApiError(503, f"server busy: {err}; retry later", type="server_error", code="overloaded") from None
        text, stopped = apply_stop(generation.text, req.stop)
        done = stopped or generation.output_tokens < max_tokens
        result = {"text": text, "finish_reason": "stop" if done else "length",
                  "completion_tokens": generation.output_tokens}
        if key is not None:
            await cache_io(server.cache.put, key, result)
        server.metrics.served(len(ids), generation.output_tokens, (job.started - t0) + generation.ttft_s,
                              time.perf_counter() - t0)
        return result, len(ids)

    @app.post("/v1/completions")
    async def completions(request: Request):
        t0 = time.perf_counter()
        authorize(request)
        req = await read_request(request, CompletionRequest, limit_bytes)
        max_tokens = check(req)
        prompts = req.prompts
        check_chars(sum(len(p) for p in prompts))
        ids = [encode(server.engine.encode_prompt, p) for p in prompts]
        results = await asyncio.gather(*(answer(i, {"prompt": p}, max_tokens, req, t0) for i, p in zip(ids, prompts)))
        return completion_response(server.model_id, [r for r, _ in results], sum(n for _, n in results),
                                   sum(r["completion_tokens"] for r, _ in results))

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        t0 = time.perf_counter()
        authorize(request)
        req = await read_request(request, ChatRequest, limit_bytes)
        max_tokens = check(req)
        messages = [m.model_dump() for m in req.messages]
        check_chars(sum(len(m["content"]) for m in messages))
        ids = encode(server.engine.encode_messages, messages)
        result, prompt_tokens = await answer(ids, {"messages": messages}, max_tokens, req, t0)
        return chat_response(server.model_id, result, prompt_tokens, result["completion_tokens"])

    @app.get("/v1/models")
    async def models(request: Request):
        authorize(request)
        return {"object": "list", "data": [{
            "id": server.model_id, "object": "model", "created": int(server.started), "owned_by": "greenlane",
            "registered_model": model.name, "version": model.version, "variant": model.variant,
            "runtime": model.runtime, "target": model.target, "serve": cfg}]}

    @app.get("/health")
    async def health():
        monitor = server.monitor
        return {"status": "ok", "model": server.model_id, "registered_model": model.name, "version": model.version,
                "variant": model.variant, "runtime": model.runtime, "target": model.target,
                "uptime_s": time.time() - server.started, "queue_waiting": server.batcher.waiting,
                "runtime_batches": server.engine.batches, "serve": cfg,
                "energy": {"source": monitor.source if monitor else None,
                           "benchmark_j_per_1k_tokens": model.benchmark_j_per_1k_tokens,
                           "benchmark_energy_source": model.benchmark_energy_source}}

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
