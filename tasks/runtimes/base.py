"""What every runtime offers the benchmark, and the pieces they share.

Every runtime tokenizes with the variant's own Hugging Face tokenizer
(tokenizer.json is kept in every variant directory, GGUF and ONNX ones too),
and takes and returns token ids: the same prompt is the same ids in every
runtime, so fidelity and accuracy compare like with like.

Timing convention (all runtimes): `ttft_s` runs from the call to the moment
the first new token's logits are available (prefill + one step), `total_s` to
the last token's; per-token stamps come from the runtime's own decode loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from tasks.errors import GreenlaneError


@dataclass(frozen=True)
class Generation:
    """One greedy generation request."""

    prompt_tokens: int
    token_ids: list[int]
    """The new tokens only."""
    text: str
    ttft_s: float
    """Call to the first new token (prefill + one step), seconds."""
    total_s: float
    """Call to the last new token, seconds."""

    @property
    def output_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def tpot_s(self) -> float:
        """Mean time per output token after the first (decode), seconds."""
        return (self.total_s - self.ttft_s) / max(self.output_tokens - 1, 1)


class Runtime(Protocol):
    """A loaded model in one runtime on one device (see tasks/runtimes/__init__.py for the module shape)."""

    name: str
    """The runtime's registry name (`transformers`, `llama.cpp`, `onnxruntime-genai`)."""
    device: str
    """`cpu` or `cuda`: where the weights live and the compute runs."""
    tokenizer: object
    """The variant's Hugging Face tokenizer (encode/decode, chat template)."""

    def generate(self, ids: list[int], max_new_tokens: int, *, ignore_eos: bool = True,
                 temperature: float = 0.0, seed: int = 0) -> Generation:
        """Generate after the token ids `ids` (greedy when temperature is 0). `ignore_eos`: exactly
        `max_new_tokens` tokens (the benchmark's fixed-length requests); else stop at end of sequence."""

    def generate_batch(self, batch: list[list[int]], max_new_tokens: int) -> int:
        """Greedy, fixed-length generation for several prompts at once where the runtime batches (else one
        after another); returns the tokens generated."""

    def prefill(self, ids: list[int]) -> None:
        """The prefill alone: one forward pass over `ids` filling the KV cache, as generation starts."""

    def logits(self, ids: list[int], prefix: list[int] | None = None) -> np.ndarray:
        """Next-token logits at every position of `ids` read after `prefix` (float32, [len(ids), vocab]).
        Row i scores the token that follows ids[i]. A runtime may keep the prefix's KV state between calls
        with the same prefix (the few-shot prefix of the accuracy task). A runtime that can score several
        sequences in one pass may also offer `logits_many(batch, prefix) -> [logits per sequence]`; the accuracy
        pass then uses it (optional: the others are called one sequence at a time)."""

    def memory_footprint_mb(self) -> float:
        """Memory the loaded weights take, MB (1e6 bytes)."""

    def close(self) -> None:
        """Free the model (native memory, GPU memory)."""


def load_tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(Path(model_dir))


def chat_ids(tokenizer, prompt: str) -> list[int]:
    """The token ids of one user turn in the model's chat template, ready for the assistant's answer."""
    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                        tokenize=True, return_dict=True)["input_ids"]
    return list(ids)


def pad_id(tokenizer) -> int:
    """The pad token id, falling back to end of sequence when the tokenizer has none.

    The one place this fallback is written: 0 is a valid id, so the test is `is None`, never `or`
    (which would turn a pad id of 0 into EOS).
    """
    for name in ("pad_token_id", "eos_token_id"):
        if (found := getattr(tokenizer, name, None)) is not None:
            return int(found)
    raise GreenlaneError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has neither a pad nor an "
                         "end-of-sequence token; set pad_token in its tokenizer_config.json")


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64 (the KL figures are differences of small numbers)."""
    x = logits.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


@dataclass
class StepClock:
    """Per-token timestamps of one generation, from the call's start."""

    t0: float = field(default_factory=time.perf_counter)
    stamps: list[float] = field(default_factory=list)

    def tick(self) -> None:
        self.stamps.append(time.perf_counter())

    def generation(self, prompt_tokens: int, token_ids: list[int], text: str) -> Generation:
        end = self.stamps[-1] if self.stamps else time.perf_counter()
        first = self.stamps[0] if self.stamps else end
        return Generation(prompt_tokens, list(token_ids), text, ttft_s=first - self.t0, total_s=end - self.t0)
