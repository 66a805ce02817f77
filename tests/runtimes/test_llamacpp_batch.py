"""llama.cpp's batch decoder keeps each KV stream's state between batches and reuses only the prefix it holds."""

from __future__ import annotations

import numpy as np
import pytest

from tasks import runtimes
from tasks.runtimes.base import chat_ids, log_softmax
from tasks.runtimes.llamacpp_batch import BatchDecoder

FIRST = ("Hello there, how are you today?", "Name a colour of the sea.")
# Each shares the chat template's system turn with both of FIRST, and a longer prefix with one of them.
SECOND = ("Name a colour of the sky.", "Hello there, how are you?")


@pytest.fixture(scope="module")
def llama(tiny_in):
    rt = runtimes.load(tiny_in("llama.cpp"), "cpu", threads=2)
    yield rt
    rt.close()


def test_second_batch_prefills_only_what_its_streams_lack_and_scores_as_a_fresh_pass(llama):
    decoder = BatchDecoder(llama._lib, llama.llm, llama._n_vocab)
    first, second = ([chat_ids(llama.tokenizer, p) for p in prompts] for prompts in (FIRST, SECOND))
    scored, decoded = [], []
    real_decode = decoder._decode
    decoder._decode = lambda entries: (decoded.append(len(entries)), real_decode(entries))[1]

    def pick(logits):
        scored.append(logits.copy())
        return int(np.argmax(logits))

    try:
        decoder.generate(first, 1, pick, frozenset())
        scored.clear(), decoded.clear()
        decoder.generate(second, 1, pick, frozenset())
    finally:
        decoder.close()
    shared = [max(_common(a, b) for b in first) for a in second]
    # each prompt went to the stream holding its longest prefix and only the rest was prefilled
    assert sum(decoded) == sum(len(ids) - n for ids, n in zip(second, shared)) < sum(map(len, second))
    for ids, logits in zip(second, scored):  # the kept state is exactly that prefix's, nothing of the old prompt
        np.testing.assert_allclose(log_softmax(logits), log_softmax(llama.logits(ids)[-1]), atol=1e-3)


def _common(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
