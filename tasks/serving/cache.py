"""Response cache for deterministic requests: in-process LRU, or Redis shared by servers and restarts.

Only greedy requests (temperature 0) are cached: their answer is a function of the model version, the prompt
and the generation parameters, which is exactly what the key hashes. The model version is in the key, so after
a promotion the new champion never answers with the old one's text (the old entries simply stop being asked
for, and age out: LRU eviction, Redis TTL).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import Protocol

from tasks.errors import GreenlaneError

log = logging.getLogger(__name__)
KEY_PREFIX = "greenlane:response:"


def cache_key(model: str, version: str, request: dict) -> str:
    """A stable key for `request` (the normalized prompt or messages and generation parameters) of one version."""
    blob = json.dumps({"model": model, "version": str(version), "request": request}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    return KEY_PREFIX + hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache(Protocol):
    kind: str

    def get(self, key: str) -> dict | None: ...

    def put(self, key: str, value: dict) -> None: ...

    def close(self) -> None: ...


class LruCache:
    """The default: `size` responses in this process, least recently used evicted first."""

    kind = "lru"

    def __init__(self, size: int):
        from cachetools import LRUCache

        self._entries = LRUCache(maxsize=size)
        self._lock = threading.Lock()  # the worker thread writes while request handlers read

    def get(self, key: str) -> dict | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, value: dict) -> None:
        with self._lock:
            self._entries[key] = value

    def close(self) -> None:
        pass


class RedisCache:
    """Responses in Redis as JSON, expiring after `ttl_s`. A Redis error mid-serving is a miss (logged), not a
    failed request; an unreachable Redis at start is an error."""

    kind = "redis"

    def __init__(self, url: str, ttl_s: int):
        import redis

        self.url, self.ttl_s = url, ttl_s
        try:
            self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
            self._redis.ping()
        except (redis.RedisError, ValueError) as err:
            raise GreenlaneError(f"serve.cache is redis but {url} does not answer ({err}); start Redis or set "
                                 "serve.cache: lru") from None

    def get(self, key: str) -> dict | None:
        import redis

        try:
            raw = self._redis.get(key)
        except redis.RedisError as err:
            log.warning("redis cache read failed (served as a miss): %s", err)
            return None
        return json.loads(raw) if raw is not None else None

    def put(self, key: str, value: dict) -> None:
        import redis

        try:
            self._redis.set(key, json.dumps(value), ex=self.ttl_s)
        except redis.RedisError as err:
            log.warning("redis cache write failed (response not cached): %s", err)

    def close(self) -> None:
        self._redis.close()


def make_cache(kind: str, size: int = 1024, redis_url: str | None = None, ttl_s: int = 86400) -> ResponseCache | None:
    """The cache `serve.cache` names, or None for `none`."""
    if kind == "none":
        return None
    if kind == "lru":
        return LruCache(size)
    if kind == "redis":
        if not redis_url:
            raise GreenlaneError("serve.cache is redis but serve.redis_url is not set")
        return RedisCache(redis_url, ttl_s)
    raise GreenlaneError(f"unknown serve.cache {kind!r}; choose none, lru or redis")
