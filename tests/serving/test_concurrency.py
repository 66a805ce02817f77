"""100 requests at once to a real `greenlane serve` (the tiny model, on 127.0.0.1): every one is answered with
text, none gets a 5xx, and the server is still healthy afterwards (benchmarks/serving_survival.py is the
1,000-request version with memory figures)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from served import Served, value, write_config

pytestmark = pytest.mark.slow
N = 100


def test_100_concurrent_requests_all_answered(store, tmp_path):
    # The serve defaults (max_queue 1024 holds all 100; the worker drains the queue in batches of max_batch 8).
    served = Served(write_config(tmp_path / "serve.yaml", store, max_tokens_limit=8, default_max_tokens=4), tmp_path)
    try:
        # 70 distinct prompts, 30 repeats (a repeat races its first copy: a cache hit or a second generation).
        prompts = [f"Request {i % 70}: name a colour." for i in range(N)]

        def send(prompt: str):
            return served.request("POST", "/v1/completions", {"prompt": prompt, "max_tokens": 4})

        with ThreadPoolExecutor(max_workers=N) as pool:
            answers = list(pool.map(send, prompts))
        statuses = sorted({status for status, _ in answers})
        assert statuses == [200], [body for status, body in answers if status != 200][:3]
        texts = [body["choices"][0]["text"] for _, body in answers]
        assert all(isinstance(t, str) for t in texts)
        status, health = served.request("GET", "/health")
        assert status == 200 and health["queue_waiting"] == 0
        metrics = served.metrics()
        assert value(metrics, "greenlane_requests_total", endpoint="/v1/completions", status="200") == N
        assert value(metrics, "greenlane_batch_size_count") < N  # concurrent requests were batched together
        assert served.stop() == 0
    finally:
        served.kill()


def test_a_full_queue_answers_503_with_retry_after():
    """What a request beyond serve.max_queue gets (app.py turns QueueFull into this): a retryable 503."""
    from tasks.serving.openai import ApiError

    response = ApiError(503, "server busy", type="server_error", code="overloaded").response()
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert "Retry-After" not in ApiError(400, "bad").response().headers
