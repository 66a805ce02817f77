"""onnxruntime-genai: an ONNX variant (from the `onnx` export step) on cpu, or cuda with the CUDA build.

Token ids in, token ids out: the variant's Hugging Face tokenizer encodes and
decodes, ORT GenAI's own tokenizer is never used, so the same prompt is the
same ids here as in the transformers runtime.

The decode loop is ours, on ORT GenAI's `Generator`: `append_tokens` runs the
forward pass over the tokens it is given (the prefill) and leaves the logits of
every position in the `logits` output (the builder keeps the LM head unpruned,
which `logits` needs; prefill pays for the LM head on every position, where
transformers computes the last only); `generate_next_token` picks a token from
the last logits, then runs the next forward on it. The search options follow
the variant's genai_config.json (written by the builder from the model's
generation config); `max_length` and `min_length` count prompt and new tokens.

`threads` sets ONNX Runtime's intra-op threads, overlaid on the variant's
genai_config.json in memory (the file is never edited); None keeps ONNX
Runtime's default (one thread per physical core).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tasks.errors import GreenlaneError
from tasks.runtimes.base import Generation, StepClock, load_tokenizer

NAME = "onnxruntime-genai"
PACKAGE = "onnxruntime_genai"
DEVICES = ("cpu", "cuda")
FORMAT = "ONNX model (model.onnx + model.onnx.data) with genai_config.json, plus the Hugging Face tokenizer files"
# KV capacity of the generator that keeps a prefix for `logits`: at least this many tokens after the prefix.
# With past_present_share_buffer (the builder's default) the KV buffer is allocated at full capacity.
PREFIX_HEADROOM = 512


def gpu_available() -> bool:
    """Whether this onnxruntime-genai can run on a CUDA GPU (the onnxruntime-genai-cuda build, and a GPU)."""
    import onnxruntime_genai as og

    return og.is_cuda_available()


def load(model_dir: Path, device: str = "cpu", threads: int | None = None) -> "OrtGenAIRuntime":
    import onnxruntime_genai as og

    model_dir = Path(model_dir)
    config_file = model_dir / "genai_config.json"
    if not config_file.is_file():
        raise GreenlaneError(f"{model_dir} has no genai_config.json; an onnxruntime-genai variant is built by the "
                             "onnx export step")
    if device == "cuda" and not gpu_available():
        raise GreenlaneError("no usable CUDA GPU for onnxruntime-genai: this build has no CUDA execution provider "
                             "or the machine has no GPU (the CUDA build is the onnxruntime-genai-cuda package)")
    config = og.Config(str(model_dir))
    # Providers are set here for the device asked for, whatever the variant was exported for.
    config.clear_providers()
    if device == "cuda":
        config.append_provider("cuda")
    if threads:
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
    genai = json.loads(config_file.read_text())["model"]
    return OrtGenAIRuntime(og, og.Model(config), load_tokenizer(model_dir), device, model_dir, genai)


class OrtGenAIRuntime:
    name = NAME

    def __init__(self, og, model, tokenizer, device: str, model_dir: Path, genai: dict):
        self._og, self.model, self.tokenizer, self.device = og, model, tokenizer, device
        self._model_dir = model_dir
        self._context = int(genai["context_length"])
        eos = genai["eos_token_id"]
        self._eos = {eos} if isinstance(eos, int) else set(eos)  # the ids ORT GenAI's search stops at
        self._pad = int(genai["pad_token_id"])
        self._prefix: tuple[list[int], object, int] | None = None  # (ids, generator holding their KV, capacity)

    def _generator(self, max_length: int, batch_size: int = 1, **search):
        if max_length > self._context:
            raise ValueError(f"onnxruntime-genai: {max_length} tokens exceed the model's context of {self._context}")
        params = self._og.GeneratorParams(self.model)
        params.set_search_options(max_length=max_length, batch_size=batch_size, **search)
        return self._og.Generator(self.model, params)

    @staticmethod
    def _ids(rows: list[list[int]]) -> np.ndarray:
        return np.asarray(rows, dtype=np.int32)

    def _all_logits(self, generator) -> np.ndarray:
        """Every position's logits of the last append_tokens, [tokens, vocab] float32 (a copy: the buffer is reused)."""
        return generator.get_output("logits")[0].astype(np.float32)

    # --- the Runtime protocol -----------------------------------------------------------------------------------

    def generate(self, ids: list[int], max_new_tokens: int, *, ignore_eos: bool = True,
                 temperature: float = 0.0, seed: int = 0) -> Generation:
        clock = StepClock()
        total = len(ids) + max_new_tokens
        sampling = ({"do_sample": True, "temperature": temperature, "random_seed": seed} if temperature > 0
                    else {"do_sample": False})
        # min_length (prompt + new tokens) keeps end of sequence from being chosen, as transformers' min_new_tokens
        generator = self._generator(total, min_length=total if ignore_eos else 0, **sampling)
        generator.append_tokens(self._ids([list(ids)]))
        new: list[int] = []
        while not generator.is_done():
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])  # a copy to the host: the step has finished
            clock.tick()
            if not ignore_eos and token in self._eos:
                break
            new.append(token)
        return clock.generation(len(ids), new, self.tokenizer.decode(new, skip_special_tokens=True))

    def generate_batch(self, batch: list[list[int]], max_new_tokens: int) -> int:
        width = max(len(ids) for ids in batch)
        total = width + max_new_tokens
        # Right padding with the config's pad id: ORT GenAI's attention (GroupQueryAttention) expects each
        # sequence to start at position 0 and takes its length from the mask; left padding changes the results.
        rows = [list(ids) + [self._pad] * (width - len(ids)) for ids in batch]
        generator = self._generator(total, batch_size=len(batch), min_length=total, do_sample=False)
        generator.append_tokens(self._ids(rows))
        steps = 0
        while not generator.is_done():
            generator.generate_next_token()
            steps += 1
        return steps * len(batch)

    def generate_many(self, batch: list[list[int]], max_new_tokens: int) -> list[Generation]:
        """Greedy generation for several prompts in one batch, each stopping at end of sequence (the serving
        path: `greenlane serve` batches concurrent requests). Right-padded as in `generate_batch`; a row that
        has finished keeps stepping with the batch until every row has, its extra tokens dropped."""
        clock = StepClock()
        width = max(len(ids) for ids in batch)
        rows = [list(ids) + [self._pad] * (width - len(ids)) for ids in batch]
        generator = self._generator(width + max_new_tokens, batch_size=len(batch), do_sample=False)
        generator.append_tokens(self._ids(rows))
        new: list[list[int]] = [[] for _ in batch]
        done = [False] * len(batch)
        while not all(done) and not generator.is_done():
            generator.generate_next_token()
            step = generator.get_next_tokens()
            clock.tick()
            for i, token in enumerate(int(t) for t in step):
                if done[i]:
                    continue
                if token in self._eos:
                    done[i] = True
                    continue
                new[i].append(token)
                done[i] = len(new[i]) >= max_new_tokens
        return [StepClock(clock.t0, clock.stamps[:max(len(row), 1)]).generation(
                    len(ids), row, self.tokenizer.decode(row, skip_special_tokens=True))
                for ids, row in zip(batch, new)]

    def prefill(self, ids: list[int]) -> None:
        generator = self._generator(len(ids) + 1)
        generator.append_tokens(self._ids([list(ids)]))  # ONNX Runtime's Run returns with the device synchronized

    def logits(self, ids: list[int], prefix: list[int] | None = None) -> np.ndarray:
        prefix = list(prefix or [])
        if not prefix:
            generator = self._generator(len(ids))
            generator.append_tokens(self._ids([list(ids)]))
            return self._all_logits(generator)
        needed = len(prefix) + len(ids)
        if self._prefix is None or self._prefix[0] != prefix or self._prefix[2] < needed:
            capacity = min(self._context, max(needed, len(prefix) + PREFIX_HEADROOM))
            generator = self._generator(capacity)
            generator.append_tokens(self._ids([prefix]))
            self._prefix = (prefix, generator, capacity)
        generator = self._prefix[1]
        generator.rewind_to(len(prefix))  # drop what the previous call appended; the prefix's KV state stays
        generator.append_tokens(self._ids([list(ids)]))
        return self._all_logits(generator)

    def memory_footprint_mb(self) -> float:
        # The weights as stored (the ONNX files), as the other runtimes count their loaded weights.
        return sum(p.stat().st_size for pattern in ("*.onnx", "*.onnx.data") for p in self._model_dir.glob(pattern)) / 1e6

    def close(self) -> None:
        self._prefix = None
        del self.model
