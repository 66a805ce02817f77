"""llama.cpp: several greedy generations decoded together (the server's batches, the batch-size sweep).

llama-cpp-python's `Llama` makes a context of one sequence, so batching needs a context of its own:
`BatchDecoder` makes one on the same loaded weights (a copy of the first context's parameters, so the same
threads, offload and attention settings) with SEQS sequences, each in a KV stream of its own
(`kv_unified=False`). Separate streams keep every sequence's attention exactly as a lone request's: with one
unified buffer shared by the batch, each sequence attends over the others' (masked) cells too, the sums
round differently, and greedy rows diverged from a lone request's at near ties (2 of 8 chat prompts on the
demo's lora-gguf-q8_0; 8 of 8 identical with separate streams). Each stream holds `stream_ctx` positions, the
smallest power of two (from 512) that fits the group being served: the KV memory is SEQS x stream_ctx positions
(SmolLM2-135M: ~23 KB a position, 94 MB at 512), and the context is made again, larger, when a group needs it.

Each prompt is prefilled on its own. A stream keeps its KV state between batches, and a prompt goes to the
free stream that already holds the longest prefix of it (the chat template's system turn, a shared
instruction): only the rest is prefilled, as llama-server's `cache_prompt` does. With the demo's prompt mix
(~69 tokens, about half of them a shared prefix) that cut a batch of 16 from 7.4 to 6.0 s, rows identical.
Then every step decodes the next token of each unfinished sequence in one `llama_decode`: the weights are read
once per step for the whole batch, which is what a memory-bound CPU decode gains from batching. A sequence
that finishes leaves the batch at once, so the others never step for it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tasks.runtimes.base import StepClock

SEQS = 8
"""Sequences decoded together; a larger batch runs as several of at most SEQS (the server's max_batch is 8)."""
MIN_STREAM_CTX = 512


class BatchDecoder:
    def __init__(self, lib, llm, n_vocab: int):
        self._lib, self._llm, self._n_vocab = lib, llm, n_vocab
        self._ctx = self._batch = None
        self.stream_ctx = 0
        self._kv: list[list[int]] = [[] for _ in range(SEQS)]  # the tokens each stream's KV cache holds

    def _fit(self, need: int) -> None:
        """A context whose streams hold `need` positions each (made, or made again larger, here)."""
        if need <= self.stream_ctx:
            return
        self.close()
        stream_ctx = max(MIN_STREAM_CTX, 1 << (need - 1).bit_length())
        params = type(self._llm.context_params).from_buffer_copy(self._llm.context_params)
        params.n_ctx, params.n_seq_max, params.kv_unified = SEQS * stream_ctx, SEQS, False
        self._ctx = self._lib.llama_init_from_model(self._llm.model, params)
        if not self._ctx:
            raise RuntimeError(f"llama.cpp could not make a context of {SEQS} sequences x {stream_ctx} positions")
        self.stream_ctx = stream_ctx
        self._n_batch = self._lib.llama_n_batch(self._ctx)
        self._batch = self._lib.llama_batch_init(self._n_batch, 0, 1)

    def generate(self, prompts: list[list[int]], max_new_tokens: int,
                 pick: Callable[[np.ndarray], int], stop: frozenset[int]) -> list[tuple[list[int], StepClock]]:
        """Each prompt's new tokens and its clock (one tick per token picked, end of sequence included).
        `pick(logits) -> token`; a sequence ends at a token in `stop` (not kept) or after max_new_tokens."""
        out = []
        for start in range(0, len(prompts), SEQS):
            group = prompts[start:start + SEQS]
            self._fit(max(len(ids) for ids in group) + max_new_tokens)
            out += self._generate_group(group, max_new_tokens, pick, stop)
        return out

    def _generate_group(self, prompts, max_new_tokens, pick, stop):
        memory = self._lib.llama_get_memory(self._ctx)
        t0 = StepClock().t0
        clocks = [StepClock(t0) for _ in prompts]
        new: list[list[int]] = [[] for _ in prompts]
        stream = self._assign(prompts)  # prompt i runs in KV stream stream[i]
        active = []  # the prompts still generating

        def take(i: int, logits: np.ndarray) -> None:
            token = pick(logits)
            clocks[i].tick()
            if token in stop:
                return
            new[i].append(token)
            if len(new[i]) < max_new_tokens:
                active.append(i)

        for i, ids in enumerate(prompts):
            s = stream[i]
            # keep the stream's KV for the prompt's longest prefix it already holds (never the whole prompt:
            # the last prompt token is decoded again for its logits)
            keep = min(_common_prefix(self._kv[s], ids), len(ids) - 1)
            self._lib.llama_memory_seq_rm(memory, s, keep, -1)
            self._kv[s] = list(ids)
            for start in range(keep, len(ids), self._n_batch):
                chunk = ids[start:start + self._n_batch]
                last = start + self._n_batch >= len(ids)
                self._decode([(t, start + j, s, last and j == len(chunk) - 1) for j, t in enumerate(chunk)])
            if max_new_tokens > 0:
                take(i, self._logits(-1))
        while active:
            step, active[:] = list(active), []
            self._decode([(new[i][-1], len(self._kv[stream[i]]), stream[i], True) for i in step])
            for row, i in enumerate(step):
                self._kv[stream[i]].append(new[i][-1])
                take(i, self._logits(row))
        return list(zip(new, clocks))

    def _assign(self, prompts: list[list[int]]) -> list[int]:
        """A KV stream for each prompt (at most SEQS), each the free stream sharing the longest prefix with it."""
        free, out = list(range(SEQS)), []
        for ids in prompts:
            best = max(free, key=lambda s: _common_prefix(self._kv[s], ids))
            free.remove(best)
            out.append(best)
        return out

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of (token, position, sequence, keep logits) entries (at most n_batch)."""
        batch = self._batch
        for i, (token, pos, seq, want) in enumerate(entries):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, want
            batch.seq_id[i][0] = seq
        batch.n_tokens = len(entries)
        rc = self._lib.llama_decode(self._ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} on a batch of {len(entries)} tokens")

    def _logits(self, i: int) -> np.ndarray:
        """The logits of output row i of the last decode (-1: the last row); a view valid until the next decode."""
        return np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self._ctx, i), shape=(self._n_vocab,))

    def close(self) -> None:
        if self._ctx is not None:
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self._ctx)
            self._ctx = self._batch = None
            self.stream_ctx = 0
            self._kv = [[] for _ in range(SEQS)]



def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
