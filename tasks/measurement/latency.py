"""Timing one generation request: time to first token, time per output token, end to end.

Requests go through the variant's runtime (tasks.runtimes), which stamps each
new token as its decode loop produces it: the first stamp marks the end of
prefill (TTFT), the spacing of the rest is the decode time per token. Prompts
are chat-formatted by the variant's own tokenizer, so every runtime sees the
same token ids.
"""

from __future__ import annotations

import numpy as np

from tasks.runtimes.base import Generation, chat_ids


def timed_generate(runtime, prompt: str, max_new_tokens: int) -> Generation:
    """Greedy-generate exactly `max_new_tokens` tokens (EOS suppressed: every request does the same work)."""
    return runtime.generate(chat_ids(runtime.tokenizer, prompt), max_new_tokens, ignore_eos=True)


def prefill(runtime, prompt: str) -> int:
    """The prefill alone: one forward over the chat-formatted prompt, filling a KV cache, as generation
    starts. Returns the prompt's token count."""
    ids = chat_ids(runtime.tokenizer, prompt)
    runtime.prefill(ids)
    return len(ids)


def generate_batch(runtime, prompts: list[str], max_new_tokens: int) -> int:
    """Greedy-generate `max_new_tokens` for every prompt in one batch (where the runtime batches); returns
    tokens generated."""
    return runtime.generate_batch([chat_ids(runtime.tokenizer, p) for p in prompts], max_new_tokens)


def summarize(timings: list[Generation]) -> dict:
    """Latency figures over requests, in ms and tokens/s."""
    from tasks.measurement.stats import mean_ci95

    totals_ms = np.array([t.total_s for t in timings]) * 1000
    out_tokens = sum(t.output_tokens for t in timings)
    mean_ms, ci_ms, n = mean_ci95(totals_ms)
    return {
        "requests": len(timings),
        "latency_mean_ms": mean_ms,
        "latency_ci95_ms": ci_ms if np.isfinite(ci_ms) else None,  # half-width of the 95% CI of the mean
        "latency_n": n,
        "output_tokens": out_tokens,
        "prompt_tokens": sum(t.prompt_tokens for t in timings),
        "ttft_ms": float(np.mean([t.ttft_s for t in timings]) * 1000),
        "tpot_ms": float(np.mean([t.tpot_s for t in timings]) * 1000),
        "latency_p50_ms": float(np.percentile(totals_ms, 50)),
        "latency_p95_ms": float(np.percentile(totals_ms, 95)),
        "latency_p99_ms": float(np.percentile(totals_ms, 99)),
        "tokens_per_s": out_tokens / float(sum(t.total_s for t in timings)),
    }
