"""transformers (PyTorch eager): any Hugging Face checkpoint a variant directory holds, on cpu or cuda.

Plain, bitsandbytes and optimum-quanto checkpoints all load through
`tasks.models.load_model`; `device` places the weights (`cuda` puts them on the
first GPU, so peak memory and NVML figures are of that device).
"""

from __future__ import annotations

import copy

from pathlib import Path

import numpy as np

from tasks.runtimes.base import Generation, StepClock, pad_id

NAME = "transformers"
PACKAGE = "transformers"
DEVICES = ("cpu", "cuda")
FORMAT = "Hugging Face checkpoint (safetensors)"


def gpu_available() -> bool:
    import torch

    return torch.cuda.is_available()


def load(model_dir: Path, device: str = "cpu", threads: int | None = None) -> "TransformersRuntime":
    import torch

    from tasks.models import load_model

    if threads:
        torch.set_num_threads(threads)
    model, tokenizer = load_model(model_dir, device=device)
    return TransformersRuntime(model, tokenizer, device)


class _Clock:
    """A logits processor that only records when each step happened: `generate` calls it once per new token,
    right after that token's forward pass."""

    def __init__(self, clock: StepClock):
        self.clock = clock

    def __call__(self, input_ids, scores):
        self.clock.tick()
        return scores


class TransformersRuntime:
    name = NAME

    def __init__(self, model, tokenizer, device: str):
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self._prefix: tuple[list[int], object] | None = None  # (ids, KV cache) of the last prefix

    def _tensor(self, ids: list[int]):
        import torch

        return torch.tensor([ids], dtype=torch.long, device=self.model.device)

    def generate(self, ids: list[int], max_new_tokens: int, *, ignore_eos: bool = True,
                 temperature: float = 0.0, seed: int = 0) -> Generation:
        import torch
        from transformers import LogitsProcessorList

        clock = StepClock()
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        if temperature > 0:
            torch.manual_seed(seed)
        input_ids = self._tensor(ids)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens if ignore_eos else 0, logits_processor=LogitsProcessorList([_Clock(clock)]),
                pad_token_id=pad_id(self.tokenizer), **sampling)
        if self.device == "cuda":
            torch.cuda.synchronize()
        new = out[0, len(ids):].tolist()
        if not ignore_eos and new and new[-1] == self.tokenizer.eos_token_id:
            new = new[:-1]
        return clock.generation(len(ids), new, self.tokenizer.decode(new, skip_special_tokens=True))

    def generate_batch(self, batch: list[list[int]], max_new_tokens: int) -> int:
        import torch

        input_ids, mask, pad = self._left_padded(batch)
        width = input_ids.shape[1]
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                      min_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
        return int(out.shape[1] - width) * len(batch)

    def _left_padded(self, batch: list[list[int]]):
        """(input_ids, attention_mask, pad id) for a batch; decoder-only: left padding, so new tokens follow
        each prompt directly."""
        import torch

        width = max(len(ids) for ids in batch)
        pad = pad_id(self.tokenizer)
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=self.model.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=self.model.device)
        return input_ids, mask, pad

    def generate_many(self, batch: list[list[int]], max_new_tokens: int) -> list[Generation]:
        """Greedy generation for several prompts in one padded batch, each stopping at end of sequence (the
        serving path: `greenlane serve` batches concurrent requests). Times are the batch's, per row's length."""
        import torch
        from transformers import LogitsProcessorList

        clock = StepClock()
        input_ids, mask, pad = self._left_padded(batch)
        width = input_ids.shape[1]
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                      do_sample=False, pad_token_id=pad,
                                      logits_processor=LogitsProcessorList([_Clock(clock)]))
        if self.device == "cuda":
            torch.cuda.synchronize()
        eos = self.model.generation_config.eos_token_id
        stop = {eos} if isinstance(eos, int) else set(eos or [self.tokenizer.eos_token_id])
        results = []
        for ids, row in zip(batch, out[:, width:].tolist()):
            cut = next((i for i, t in enumerate(row) if t in stop), len(row))  # finished rows are padded after EOS
            new = row[:cut]
            stamps = clock.stamps[:max(len(new), 1)]
            row_clock = StepClock(clock.t0, stamps)
            results.append(row_clock.generation(len(ids), new, self.tokenizer.decode(new, skip_special_tokens=True)))
        return results

    def prefill(self, ids: list[int]) -> None:
        import torch

        with torch.inference_mode():
            # logits for the last position only, like generate's first step (the LM head is ~20% of a small model)
            self.model(input_ids=self._tensor(ids), use_cache=True, logits_to_keep=1)
        if self.device == "cuda":
            torch.cuda.synchronize()

    def logits(self, ids: list[int], prefix: list[int] | None = None) -> np.ndarray:
        return self.logits_many([ids], prefix)[0]

    def logits_many(self, batch: list[list[int]], prefix: list[int] | None = None) -> list[np.ndarray]:
        """`logits` of several sequences read after the same prefix, in one forward pass (the accuracy pass scores
        its examples this way: 1.88x faster than one by one for SmolLM2 on 2 cores in batches of 8, measured by
        benchmarks/accuracy_batching.py). Right-padded: under causal attention no real position sees the padding
        after it, so each row's logits are its own."""
        import torch

        width = max(len(ids) for ids in batch)
        pad = pad_id(self.tokenizer)
        input_ids = torch.tensor([list(ids) + [pad] * (width - len(ids)) for ids in batch], device=self.model.device)
        with torch.inference_mode():
            if not prefix:
                out = self.model(input_ids=input_ids)
            else:
                if self._prefix is None or self._prefix[0] != list(prefix):
                    cache = self.model(input_ids=self._tensor(prefix), use_cache=True).past_key_values
                    self._prefix = (list(prefix), cache)
                # The cache object is extended in place by a forward pass, so each call gets a copy, one row
                # of the prefix's state per sequence.
                cache = copy.deepcopy(self._prefix[1])
                if len(batch) > 1:
                    cache.batch_repeat_interleave(len(batch))
                mask = torch.ones(len(batch), len(prefix) + width, dtype=torch.long, device=self.model.device)
                out = self.model(input_ids=input_ids, attention_mask=mask, past_key_values=cache, use_cache=True)
            rows = out.logits.float().cpu().numpy()
        return [rows[i, :len(ids)] for i, ids in enumerate(batch)]

    def memory_footprint_mb(self) -> float:
        return self.model.get_memory_footprint() / 1e6

    def close(self) -> None:
        self._prefix = None
        del self.model
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()


