"""`greenlane serve` as a real process on 127.0.0.1 serving the tiny model from a real MLflow registry: the OpenAI
endpoints answer what the runtime generates, the cache and the batcher do what the metrics say, the energy
series carry their source, bad requests get 4xx, and the server stops by its PID."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from served import API_KEY_ENV, BENCHMARK_J_PER_1K, Served, port_open, value, write_config

pytestmark = pytest.mark.slow
KEY = "s3cret-test-token"


@pytest.fixture(scope="module")
def server(store, redis_url, tmp_path_factory):
    """Version 1 (champion-cpu) with auth and batching; its cache in Redis where the machine has one (the LRU
    cache is the same interface, tested in test_parts.py)."""
    tmp = tmp_path_factory.mktemp("serve")
    cache = {"cache": "redis", "redis_url": redis_url} if redis_url else {"cache": "lru"}
    config = write_config(tmp / "serve.yaml", store, **cache, max_batch=4, max_wait_ms=400,
                          api_key_env=API_KEY_ENV, max_tokens_limit=32, default_max_tokens=16,
                          max_prompt_chars=2000)
    served = Served(config, tmp, KEY)
    yield served
    served.kill()


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    """The tiny model in its own runtime, in this process: what the server should answer."""
    from tasks import runtimes

    runtime = runtimes.load(tiny_dir, "cpu", threads=1)
    yield runtime
    runtime.close()


def greedy(runtime, ids: list[int], n: int):
    return runtime.generate(ids, n, ignore_eos=False)


def test_completions_and_chat_answer_what_the_runtime_generates(server, tiny):
    from tasks.runtimes.base import chat_ids

    status, body = server.request("POST", "/v1/completions", {"model": "champion-cpu", "prompt": "Hi", "max_tokens": 6})
    assert status == 200, body
    tokenizer = tiny.tokenizer
    expected = greedy(tiny, list(tokenizer("Hi")["input_ids"]), 6)
    assert body["object"] == "text_completion" and body["model"] == "champion-cpu"
    assert body["choices"][0]["text"] == expected.text
    assert body["usage"]["completion_tokens"] == expected.output_tokens
    assert body["usage"]["prompt_tokens"] == len(tokenizer("Hi")["input_ids"])

    status, body = server.request("POST", "/v1/chat/completions",
                                  {"messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 5})
    assert status == 200, body
    expected = greedy(tiny, chat_ids(tokenizer, "Name a colour."), 5)
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": expected.text}
    assert body["choices"][0]["finish_reason"] == ("length" if expected.output_tokens == 5 else "stop")

    status, body = server.request("GET", "/v1/models")
    assert status == 200 and body["data"][0]["id"] == "champion-cpu" and body["data"][0]["version"] == "1"
    assert body["data"][0]["serve"]["max_batch"] == 4 and body["data"][0]["serve"]["cache"] in ("lru", "redis")


def test_a_repeated_greedy_request_is_a_cache_hit(server):
    request = {"prompt": "The cache test prompt", "max_tokens": 8}
    before = server.metrics()
    first = server.request("POST", "/v1/completions", request)
    second = server.request("POST", "/v1/completions", request)
    after = server.metrics()
    assert first[0] == second[0] == 200
    assert second[1]["choices"][0]["text"] == first[1]["choices"][0]["text"]
    hits = value(after, "greenlane_cache_requests_total", result="hit") - value(before, "greenlane_cache_requests_total", result="hit")
    misses = value(after, "greenlane_cache_requests_total", result="miss") - value(before, "greenlane_cache_requests_total", result="miss")
    assert (hits, misses) == (1, 1)
    # a sampled request is never cached (nor looked up)
    server.request("POST", "/v1/completions", {**request, "temperature": 0.9, "seed": 1})
    assert value(server.metrics(), "greenlane_cache_requests_total") == value(after, "greenlane_cache_requests_total")


def test_concurrent_requests_are_served_as_one_batch(server, tiny):
    prompts = [f"Batch prompt number {i}" for i in range(4)]
    before = server.metrics()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda p: server.request("POST", "/v1/completions", {"prompt": p, "max_tokens": 6}),
                                prompts))
    after = server.metrics()
    assert all(status == 200 for status, _ in answers), answers
    calls = value(after, "greenlane_batch_size_count") - value(before, "greenlane_batch_size_count")
    singles = value(after, "greenlane_batch_size_bucket", le="1.0") - value(before, "greenlane_batch_size_bucket", le="1.0")
    assert calls < 4 and singles < calls, f"{calls} runtime calls, {singles} of one request: nothing was batched"
    # a padded batch answers what each prompt alone would get
    for prompt, (_, body) in zip(prompts, answers):
        assert body["choices"][0]["text"] == greedy(tiny, list(tiny.tokenizer(prompt)["input_ids"]), 6).text


def test_metrics_carry_energy_with_its_source(server):
    server.request("POST", "/v1/completions", {"prompt": "Energy", "max_tokens": 4})
    time.sleep(2.5)  # two energy windows of 1 s
    m = server.metrics()
    base = {"model": "m", "model_version": "1", "target": "cpu"}
    sources = {dict(ls)["source"] for (n, ls), _ in m.items() if n == "greenlane_energy_joules_total"}
    assert len(sources) == 1 and next(iter(sources)).startswith("estimate:cpu-time-x-")
    source = next(iter(sources))
    assert value(m, "greenlane_energy_joules_total", **base, source=source) > 0
    assert value(m, "greenlane_carbon_gco2e_total", **base, source=source) > 0
    assert value(m, "greenlane_energy_j_per_1k_tokens", **base, source=source) > 0
    assert value(m, "greenlane_benchmark_energy_j_per_1k_tokens", **base, source="estimate:test-fixture") == \
        BENCHMARK_J_PER_1K["1"]
    assert value(m, "greenlane_meter_overhead_cpu_seconds_total", **base) > 0
    assert value(m, "process_cpu_seconds_total") > value(m, "greenlane_meter_overhead_cpu_seconds_total")
    for name in ("greenlane_requests_total", "greenlane_tokens_total", "greenlane_ttft_seconds_count",
                 "greenlane_request_seconds_count", "greenlane_batch_size_count"):
        assert value(m, name, **base) > 0, name
    assert value(m, "greenlane_tokens_total", direction="in") > 0 and value(m, "greenlane_tokens_total", direction="out") > 0
    assert value(m, "greenlane_requests_total", endpoint="/v1/completions", status="200") > 0
    status, health = server.request("GET", "/health", auth=False)
    assert status == 200 and health["energy"]["source"] == source
    assert health["serve"]["max_wait_ms"] == 400 and health["runtime_batches"] is True


@pytest.mark.parametrize("path, body, status, param", [
    ("/v1/completions", b"{not json", 400, None),
    ("/v1/completions", {"max_tokens": 4}, 400, "prompt"),
    ("/v1/completions", {"prompt": "Hi", "max_tokens": 33}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": "Hi", "max_tokens": 0}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": "Hi", "stream": True}, 400, "stream"),
    ("/v1/completions", {"prompt": "Hi", "temperature": -1}, 400, "temperature"),
    ("/v1/completions", {"prompt": "x" * 2001}, 400, "prompt"),
    ("/v1/completions", {"prompt": "Hi", "model": "gpt-4"}, 404, "model"),
    ("/v1/completions", b"x" * 200_000, 413, None),
    ("/v1/completions", [1, 2], 400, None),
    ("/v1/chat/completions", {"messages": []}, 400, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "Hi"}]}, 400, "messages.0.role"),
    ("/v1/nothing", {}, 404, None),
])
def test_bad_requests_get_a_4xx_openai_error(server, path, body, status, param):
    raw = body if isinstance(body, bytes) else None
    got, answer = server.request("POST", path, None if raw else body, raw=raw)
    assert got == status, answer
    assert isinstance(answer, dict) and set(answer["error"]) == {"message", "type", "param", "code"}, answer
    assert answer["error"]["param"] == param and "Traceback" not in answer["error"]["message"]


def test_auth_rejects_a_missing_or_wrong_token(server):
    assert server.request("POST", "/v1/completions", {"prompt": "Hi"}, auth=False)[0] == 401
    status, body = server.request("GET", "/v1/models", auth=False, headers={"Authorization": "Bearer wrong"})
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert server.request("GET", "/health", auth=False)[0] == 200
    assert server.request("GET", "/metrics", auth=False)[0] == 200


def test_a_new_champion_misses_the_old_champions_cache(server, store, redis_url, tmp_path):
    if redis_url is None:
        pytest.skip("needs the Debian package redis-server (a cache shared by the old and the new champion)")
    import redis

    from tasks.serving.cache import cache_key
    from tasks.tracking import registry

    messages = [{"role": "user", "content": "Promotion test"}]
    request = {"messages": messages, "max_tokens": 6}
    before = server.metrics()
    answers = [server.request("POST", "/v1/chat/completions", request) for _ in range(2)]
    after = server.metrics()
    assert [s for s, _ in answers] == [200, 200] and answers[0][1]["choices"] == answers[1][1]["choices"]
    for result in ("miss", "hit"):
        assert value(after, "greenlane_cache_requests_total", model_version="1", result=result) - \
            value(before, "greenlane_cache_requests_total", model_version="1", result=result) == 1

    registry.promote(*store, "cpu", "2", is_default=True, decision_note="test: a new champion")
    config = write_config(tmp_path / "serve.yaml", store, cache="redis", redis_url=redis_url, batching=False)
    new = Served(config, tmp_path)
    try:
        first = new.request("POST", "/v1/chat/completions", request)
        second = new.request("POST", "/v1/chat/completions", request)
        m = new.metrics()
        assert first[0] == second[0] == 200
        # the shared Redis holds version 1's answer to this request, but version 2 never reads it
        assert value(m, "greenlane_cache_requests_total", model_version="2", result="miss") == 1
        assert value(m, "greenlane_cache_requests_total", model_version="2", result="hit") == 1
        assert value(m, "greenlane_benchmark_energy_j_per_1k_tokens", model_version="2") == BENCHMARK_J_PER_1K["2"]
        assert value(m, "greenlane_batch_size_count") == 1  # batching off: one runtime call, of one request
        assert new.stop() == 0  # SIGTERM to the PID the server wrote: a clean exit
    finally:
        new.kill()
        registry.promote(*store, "cpu", "1", is_default=True, decision_note="test: restore")
    assert not new.pid_file.exists()
    keys = redis.Redis.from_url(redis_url)
    normalized = {"messages": messages, "max_tokens": 6, "stop": []}
    assert keys.exists(cache_key("m", "1", normalized)) and keys.exists(cache_key("m", "2", normalized))


def test_a_bad_alias_is_a_one_line_error(store, tmp_path, capsys):
    from tasks.cli import main

    config = write_config(tmp_path / "serve.yaml", store)
    assert main(["serve", "--alias", "champion-nowhere", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "champion-nowhere" in err and "champion-cpu" in err


def test_the_server_stops_by_its_pid(server):
    assert server.stop() == 0
    assert not port_open(server.port) and not server.pid_file.exists()
