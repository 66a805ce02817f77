"""The `serve:` section: what `greenlane serve` runs with (tasks/serving)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tasks.config.checks import _Strict


class ServeConfig(_Strict):
    """`greenlane serve`: the OpenAI-compatible server of a champion (tasks/serving). Every knob is also a CLI flag."""

    host: str = "127.0.0.1"
    """Address to bind. Anything but a loopback address needs `api_key_env` set (or `--insecure`)."""
    port: int = Field(8000, ge=1, le=65535)
    """TCP port to listen on."""
    cache: Literal["none", "lru", "redis"] = "lru"
    """Response cache for deterministic (temperature 0) requests: `none`, `lru` (in this process), or `redis`
    (shared by servers and kept across restarts). Keys include the model version, so a promotion never serves
    the previous champion's answer."""
    cache_size: int = Field(1024, ge=1)
    """Most responses the `lru` cache keeps (least recently used evicted first)."""
    redis_url: str | None = None
    """Redis for `cache: redis`, e.g. `redis://127.0.0.1:6379/0` (the compose stack's `redis://redis:6379/1`)."""
    cache_ttl_s: int = Field(86400, ge=1)
    """How long a cached response lives in Redis, seconds."""
    batching: bool = True
    """Serve greedy requests that arrive within `max_wait_ms` of each other as one batch (every runtime batches:
    transformers, onnxruntime-genai, llama.cpp)."""
    max_batch: int = Field(8, ge=1, le=256)
    """Most requests in one batch."""
    max_wait_ms: float = Field(10.0, ge=0, le=10000)
    """How long the first request of a batch waits for others, milliseconds (added to its latency at low load)."""
    max_queue: int = Field(1024, ge=1)
    """Most requests waiting for the model; beyond it a request gets 503 (bounds memory under load)."""
    max_tokens_limit: int = Field(256, ge=1)
    """Largest `max_tokens` a request may ask for (a larger one gets 400)."""
    default_max_tokens: int = Field(64, ge=1)
    """`max_tokens` of a request that does not set it."""
    max_prompt_chars: int = Field(16000, ge=1)
    """Longest prompt (completions) or sum of message contents (chat), characters (a longer one gets 400)."""
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Name of the environment variable holding the bearer token /v1/* requires (None: no auth). /health and
    /metrics stay open."""
    threads: int | None = Field(None, ge=1)
    """Compute threads of the runtime (None: every core this process may use)."""
    energy_window_s: float = Field(10.0, ge=0.5)
    """Energy meter window, seconds: the counters advance once per window (shorter: fresher, more metering CPU)."""

    @model_validator(mode="after")
    def _consistent(self) -> "ServeConfig":
        if self.cache == "redis" and not self.redis_url:
            raise ValueError("cache: redis needs redis_url (e.g. redis://127.0.0.1:6379/0)")
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError(f"default_max_tokens ({self.default_max_tokens}) must be <= max_tokens_limit "
                             f"({self.max_tokens_limit})")
        return self
