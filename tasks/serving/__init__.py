"""`greenlane serve`: the champion of a target behind an OpenAI-compatible HTTP API, with live energy.

    server.py    resolve the registered version (tasks.tracking), load it in its runtime, wire the parts, run uvicorn
    app.py       routes: /v1/completions, /v1/chat/completions, /v1/models, /health, /metrics
    openai.py    the OpenAI request/response/error shapes, validated and bounded
    engine.py    the loaded runtime: prompts and chat messages to token ids, batches to generations
    batching.py  dynamic batching on the one worker thread that owns the model
    cache.py     the response cache for greedy requests (LRU in process, or Redis), keyed by model version
    metrics.py   Prometheus series, and the energy monitor reading the target's meter in windows

The metric names and knobs are a contract with the monitoring stack (docker/prometheus, docker/grafana) and the
serving-modes benchmark (benchmarks/serving_modes.py).
"""
