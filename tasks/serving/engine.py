"""The served model: the registered variant loaded in its own runtime, turning requests' token ids into text.

`serve(jobs)` runs on the batcher's worker thread only (a runtime is not thread-safe). Greedy jobs with the
same `max_tokens` go to the runtime as one batch (`generate_many`: padded in transformers and onnxruntime-genai,
one KV stream per sequence in llama.cpp); sampled jobs get one `generate` call each. Every runtime call reports its size to
`on_batch`, so the batch-size histogram shows what the model really ran, not what was queued together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Callable

from tasks.serving.batching import Job


class BadRequest(ValueError):
    """A request the model cannot serve as asked (the API answers 400 with this message)."""


@dataclass(frozen=True)
class ServedModel:
    """Which registered version is served, and what its benchmark run measured."""

    name: str
    """Registered model name."""
    version: str
    """Registered version number (part of every cache key)."""
    target: str
    """The target whose champion this is: its device, meter, region and hardware apply."""
    model_uri: str
    variant: str
    runtime: str
    variant_dir: Path
    benchmark_j_per_1k_tokens: float | None
    """energy_j_per_1k_tokens the benchmark logged on this version's run (None: not logged)."""
    benchmark_energy_source: str | None


class Engine:
    def __init__(self, runtime, model: ServedModel, on_batch: Callable[[int, int], None] = lambda size, tokens: None):
        from tasks.runtimes.base import load_tokenizer

        self.runtime, self.model, self.on_batch = runtime, model, on_batch
        # The event loop encodes while the worker generates and decodes: a Rust tokenizer shared by two threads
        # can fail ("Already borrowed"), so requests are encoded with a copy of their own.
        self.tokenizer = load_tokenizer(model.variant_dir)
        # Only a runtime that generates several prompts in one call batches; the others run a batch in turn.
        self.batches = callable(getattr(runtime, "generate_many", None))
        self.context_tokens = _context_tokens(model.variant_dir, runtime.name)

    # --- requests -> token ids ---------------------------------------------------------------------------------

    def encode_prompt(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt)["input_ids"])

    def encode_messages(self, messages: list[dict]) -> list[int]:
        if not getattr(self.tokenizer, "chat_template", None):
            raise BadRequest(f"model {self.model.name} has no chat template; use /v1/completions")
        try:
            out = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                     return_dict=True)
        except Exception as err:  # the template's own checks (jinja raise_exception), e.g. role order
            raise BadRequest(f"messages do not fit the model's chat template: {err}") from None
        return list(out["input_ids"])

    def check_fits(self, ids: list[int], max_tokens: int) -> None:
        if not ids:
            raise BadRequest("the prompt is empty (no tokens)")
        if len(ids) + max_tokens > self.context_tokens:
            raise BadRequest(f"the prompt is {len(ids)} tokens; with max_tokens {max_tokens} that exceeds the "
                             f"model's context of {self.context_tokens} tokens")

    # --- the worker thread ---------------------------------------------------------------------------------------

    def serve(self, jobs: list[Job]) -> None:
        greedy = sorted((j for j in jobs if j.temperature <= 0), key=lambda j: j.max_tokens)
        groups = [list(g) for _, g in groupby(greedy, key=lambda j: j.max_tokens)] if self.batches else \
            [[j] for j in greedy]
        groups += [[j] for j in jobs if j.temperature > 0]
        for group in groups:
            try:
                if len(group) > 1:
                    generations = self.runtime.generate_many([j.ids for j in group], group[0].max_tokens)
                else:
                    j = group[0]
                    generations = [self.runtime.generate(j.ids, j.max_tokens, ignore_eos=False,
                                                         temperature=j.temperature, seed=j.seed)]
            except Exception as err:  # this group's requests fail; the rest of the batch is still served
                for j in group:
                    j.future.set_exception(err)
                continue
            self.on_batch(len(group), sum(g.output_tokens for g in generations))
            for j, generation in zip(group, generations):
                j.future.set_result(generation)

    def close(self) -> None:
        self.runtime.close()


def _context_tokens(variant_dir: Path, runtime: str) -> int:
    """Prompt + output tokens the loaded model holds: its trained context, capped by llama.cpp's KV cache."""
    config = Path(variant_dir) / "config.json"
    n = json.loads(config.read_text()).get("max_position_embeddings") if config.is_file() else None
    n = int(n or 2048)
    if runtime == "llama.cpp":
        from tasks.runtimes.llamacpp import MAX_CTX

        n = min(n, MAX_CTX)
    return n
