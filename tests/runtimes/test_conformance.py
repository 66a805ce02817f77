"""Every registered runtime behaves the same way on the tiny model (f32 exports), as measurement expects.

No runtime is skipped: `make install` installs all three, and a runtime that is registered but cannot run
here is a failure, not a skip.
"""

from __future__ import annotations

import numpy as np
import pytest

from tasks import runtimes
from tasks.errors import GreenlaneError
from tasks.measurement import accuracy
from tasks.runtimes.base import chat_ids, log_softmax

PROMPT = "Name three colours."
# Measured on the tiny model (float32 everywhere): log-probs of llama.cpp f32 and ORT GenAI fp32 differ from
# transformers' by < 1e-4 nats per token; the tolerance leaves room for other CPUs' kernels.
LOGPROB_ATOL = 1e-3


@pytest.fixture(scope="module")
def loaded(tiny_in):
    cache = {}

    def _get(name):
        if name not in cache:
            assert runtimes.installed(name), f"runtime {name} is registered but not installed (make install)"
            cache[name] = runtimes.load(tiny_in(name), "cpu", threads=2)
        return cache[name]

    yield _get
    for rt in cache.values():
        rt.close()


def test_variant_directory_names_its_runtime(tiny_in, runtime_name):
    assert runtimes.runtime_of(tiny_in(runtime_name)) == runtime_name


def test_fixed_length_greedy_generation_is_deterministic(loaded, runtime_name):
    rt = loaded(runtime_name)
    assert rt.name == runtime_name and rt.device == "cpu"
    ids = chat_ids(rt.tokenizer, PROMPT)
    first, second = rt.generate(ids, 12), rt.generate(ids, 12)
    assert first.output_tokens == 12 and first.prompt_tokens == len(ids)
    assert first.token_ids == second.token_ids
    assert 0 < first.ttft_s <= first.total_s
    assert first.tpot_s >= 0
    assert isinstance(first.text, str)


def test_stops_at_end_of_sequence_when_asked(loaded, runtime_name):
    rt = loaded(runtime_name)
    out = rt.generate(chat_ids(rt.tokenizer, PROMPT), 8, ignore_eos=False)
    assert out.output_tokens <= 8 and rt.tokenizer.eos_token_id not in out.token_ids


def test_batch_prefill_and_memory(loaded, runtime_name):
    rt = loaded(runtime_name)
    batch = [chat_ids(rt.tokenizer, p) for p in (PROMPT, "Hello there, how are you today?")]
    assert rt.generate_batch(batch, 5) == 10
    rt.prefill(batch[0])
    assert rt.memory_footprint_mb() > 0


def test_a_batch_generates_what_each_prompt_generates_alone(loaded, runtime_name):
    """`generate_many` (the server's batches) must answer each request as a lone request would."""
    rt = loaded(runtime_name)
    if not callable(getattr(rt, "generate_many", None)):
        pytest.skip(f"{runtime_name} has no batched generation: the server runs its requests one at a time")
    batch = [chat_ids(rt.tokenizer, p) for p in (PROMPT, "Hello there, how are you today?", "Hi")]
    together = rt.generate_many(batch, 9)
    alone = [rt.generate(ids, 9, ignore_eos=False) for ids in batch]
    assert [g.token_ids for g in together] == [g.token_ids for g in alone]
    assert all(g.prompt_tokens == len(ids) and 0 < g.ttft_s <= g.total_s for g, ids in zip(together, batch))
    # a second batch whose prompts share the chat template's prefix with the first's (llama.cpp reuses the KV
    # state a stream kept), in another order and with a prompt the first batch ran exactly
    again = [chat_ids(rt.tokenizer, p) for p in ("Hello there, how are you?", PROMPT, "Hi, how are you today?")]
    assert [g.token_ids for g in rt.generate_many(again, 9)] == \
        [rt.generate(ids, 9, ignore_eos=False).token_ids for ids in again]


def test_logits_shape_and_prefix_reuse(loaded, runtime_name):
    rt = loaded(runtime_name)
    prefix = rt.tokenizer("Review: fine.\nSentiment: positive\n\n")["input_ids"]
    ids = rt.tokenizer("Review: awful.\nSentiment:", add_special_tokens=False)["input_ids"]
    with_prefix = rt.logits(ids, prefix=prefix)
    assert with_prefix.shape == (len(ids), len(rt.tokenizer)) and with_prefix.dtype == np.float32
    again = rt.logits(ids, prefix=prefix)  # the kept prefix state must not be extended by the first call
    np.testing.assert_allclose(again, with_prefix, atol=1e-5)
    whole = rt.logits(prefix + ids)
    np.testing.assert_allclose(log_softmax(whole[len(prefix):]), log_softmax(with_prefix), atol=LOGPROB_ATOL)


def test_log_likelihood_agrees_with_transformers(loaded, runtime_name):
    reference, rt = loaded("transformers"), loaded(runtime_name)
    prefix = rt.tokenizer("The weather today is")["input_ids"]
    cont = rt.tokenizer(" sunny and warm", add_special_tokens=False)["input_ids"]
    full = prefix + cont

    def loglik(runtime):
        logits = runtime.logits(full)
        return sum(accuracy.token_logprobs(logits[len(prefix) - 1:-1], cont))

    assert loglik(rt) == pytest.approx(loglik(reference), abs=LOGPROB_ATOL * len(cont))
    np.testing.assert_allclose(log_softmax(rt.logits(full)), log_softmax(reference.logits(full)), atol=LOGPROB_ATOL)


def test_task_accuracy_and_perplexity_run_through_every_runtime(loaded, runtime_name):
    rt = loaded(runtime_name)
    examples = accuracy.load_split("sentiment", "eval", 4)
    acc = accuracy.task_accuracy(rt, examples)
    assert acc["accuracy_n"] == 4 and set(acc["correct"]) <= {0, 1}
    ppl = accuracy.perplexity(rt, accuracy.heldout_text(), 64)
    assert ppl["perplexity_tokens"] == 64 and np.isfinite(ppl["perplexity"])


def test_cuda_without_a_gpu_fails_loudly_instead_of_running_on_the_cpu(tiny_in, runtime_name, monkeypatch):
    module = runtimes.runtime_module(runtime_name)
    monkeypatch.setattr(module, "gpu_available", lambda: False)
    with pytest.raises(GreenlaneError, match="no usable CUDA GPU"):
        runtimes.load(tiny_in(runtime_name), "cuda")


def test_unknown_runtime_and_device_are_named():
    with pytest.raises(GreenlaneError, match="unknown runtime 'vllm'"):
        runtimes.runtime_module("vllm")
    with pytest.raises(GreenlaneError, match="unknown device 'tpu'"):
        runtimes.load(".", "tpu", runtime="transformers")
