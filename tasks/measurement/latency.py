"""Timing one generation request: time to first token, time per output token, end to end.

Timestamps come from a logits processor, which `generate` calls once per new
token right after that token's forward pass, so the first call marks the end
of prefill (TTFT) and the spacing of the rest is the decode time per token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RequestTiming:
    prompt_tokens: int
    output_tokens: int
    ttft_s: float
    """Start of the request to the first token's logits (prefill + one step)."""
    total_s: float
    """Start of the request to the last token."""

    @property
    def tpot_s(self) -> float:
        """Mean time per output token after the first (decode)."""
        return (self.total_s - self.ttft_s) / max(self.output_tokens - 1, 1)


class _StepClock:
    """A logits processor that only records when each step happened."""

    def __init__(self):
        self.stamps: list[float] = []

    def __call__(self, input_ids, scores):
        self.stamps.append(time.perf_counter())
        return scores


def chat_inputs(tokenizer, prompt: str):
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )


def timed_generate(model, tokenizer, prompt: str, max_new_tokens: int) -> tuple[RequestTiming, str]:
    """Greedy-generate exactly `max_new_tokens` tokens (EOS suppressed) and time it."""
    import torch
    from transformers import LogitsProcessorList

    inputs = chat_inputs(tokenizer, prompt)
    clock = _StepClock()
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens,  # fixed output length: every request does the same work
            do_sample=False,
            logits_processor=LogitsProcessorList([clock]),
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        )
    t_end = time.perf_counter()
    prompt_len = inputs["input_ids"].shape[1]
    new_tokens = out[0][prompt_len:]
    timing = RequestTiming(
        prompt_tokens=prompt_len,
        output_tokens=len(new_tokens),
        ttft_s=clock.stamps[0] - t0,
        total_s=t_end - t0,
    )
    return timing, tokenizer.decode(new_tokens, skip_special_tokens=True)


def prefill(model, tokenizer, prompt: str) -> int:
    """The prefill alone: one forward over the chat-formatted prompt, filling a KV cache, as
    `generate` does before its first token. Returns the prompt's token count."""
    import torch

    inputs = chat_inputs(tokenizer, prompt)
    with torch.inference_mode():
        # logits for the last position only, like generate's first step (the LM head is ~20% of a small model)
        model(**inputs, use_cache=True, logits_to_keep=1)
    return int(inputs["input_ids"].shape[1])


def generate_batch(model, tokenizer, prompts: list[str], max_new_tokens: int) -> int:
    """Greedy-generate `max_new_tokens` for every prompt in one left-padded batch; returns tokens generated."""
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only: new tokens must follow each prompt directly
    try:
        inputs = tokenizer.apply_chat_template(
            [[{"role": "user", "content": p}] for p in prompts],
            add_generation_prompt=True, padding=True, return_tensors="pt", return_dict=True,
        )
    finally:
        tokenizer.padding_side = side
    with torch.inference_mode():
        out = model.generate(**inputs, **_fixed_length(tokenizer, max_new_tokens))
    return int(out.shape[1] - inputs["input_ids"].shape[1]) * len(prompts)


def generate_ids(model, tokenizer, input_ids, max_new_tokens: int) -> int:
    """Greedy-generate exactly `max_new_tokens` after raw token ids (no chat template); returns tokens generated."""
    import torch

    with torch.inference_mode():
        out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                             **_fixed_length(tokenizer, max_new_tokens))
    return int(out.shape[1] - input_ids.shape[1])


def _fixed_length(tokenizer, n: int) -> dict:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return {"max_new_tokens": n, "min_new_tokens": n, "do_sample": False, "pad_token_id": pad}


def summarize(timings: list[RequestTiming]) -> dict:
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
