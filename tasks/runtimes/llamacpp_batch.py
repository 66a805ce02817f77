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

Each prompt is prefilled on its own, in the same chunks as a lone request's prefill. Then every step decodes
the next token of each unfinished sequence in one `llama_decode`: the weights are read once per step for the
whole batch, which is what a memory-bound CPU decode gains from batching. A sequence that finishes leaves the
batch at once and its KV cells are freed, so the others never step for it.
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
        self._lib.llama_memory_clear(memory, True)
        t0 = StepClock().t0
        clocks = [StepClock(t0) for _ in prompts]
        new: list[list[int]] = [[] for _ in prompts]
        active = []  # the sequences still generating, with the token to decode next

        def take(seq: int, logits: np.ndarray) -> None:
            token = pick(logits)
            clocks[seq].tick()
            if token in stop:
                self._lib.llama_memory_seq_rm(memory, seq, -1, -1)
                return
            new[seq].append(token)
            if len(new[seq]) < max_new_tokens:
                active.append(seq)
            else:
                self._lib.llama_memory_seq_rm(memory, seq, -1, -1)

        for seq, ids in enumerate(prompts):
            for start in range(0, len(ids), self._n_batch):
                chunk = ids[start:start + self._n_batch]
                last = start + self._n_batch >= len(ids)
                self._decode([(t, start + i, seq, last and i == len(chunk) - 1) for i, t in enumerate(chunk)])
            if max_new_tokens > 0:
                take(seq, self._logits(-1))
        while active:
            step, active[:] = list(active), []
            self._decode([(new[s][-1], len(prompts[s]) + len(new[s]) - 1, s, True) for s in step])
            for row, seq in enumerate(step):
                take(seq, self._logits(row))
        return list(zip(new, clocks))

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

