"""llama.cpp (llama-cpp-python): a GGUF variant (from the `gguf` export step) on cpu, or cuda with a CUDA build.

Token ids in, token ids out: the variant's Hugging Face tokenizer encodes and
decodes, llama.cpp's own tokenizer is never used, so the same prompt is the
same ids here as in the transformers runtime.

`llama_cpp.Llama` loads the model and context; the decode loop is ours, on
llama.cpp's C API (`llama_decode` with a batch whose logits flags we set).
`Llama.eval` fixes per instance whether every position's logits are kept:
with `logits_all=True` each prefill and decode step would run the LM head on
every position (`prefill` and ttft would pay for it, where transformers
computes the last position only) and keep an n_ctx x vocab float32 array
(400 MB for SmolLM2 at 2048); with False it keeps none. Asking per batch
gives `generate`/`prefill` last-position logits and `logits` every position.

`threads` sets llama.cpp's decode and prefill threads (`tasks.runtimes.load`
always passes one; None would keep llama-cpp-python's defaults: half the
logical CPUs for decode, all for prefill).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tasks.errors import GreenlaneError
from tasks.runtimes.base import Generation, StepClock, load_tokenizer

NAME = "llama.cpp"
PACKAGE = "llama_cpp"
DEVICES = ("cpu", "cuda")
FORMAT = "one GGUF file plus the Hugging Face tokenizer files and config.json"
# KV cache length: the model's trained context when shorter. 2048 holds the benchmark's prompts plus their
# output and the accuracy task's few-shot prefix; the KV cache grows linearly with it.
MAX_CTX = 2048


def gpu_available() -> bool:
    """Whether this llama-cpp-python build sees a GPU here: llama.cpp answers true only for a build with a GPU
    backend (CUDA: CMAKE_ARGS=-DGGML_CUDA=on, see docker/gpu-worker) that finds a device."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def load(model_dir: Path, device: str = "cpu", threads: int | None = None) -> "LlamaCppRuntime":
    import llama_cpp

    model_dir = Path(model_dir)
    files = sorted(model_dir.glob("*.gguf"))
    if len(files) != 1:
        raise GreenlaneError(f"{model_dir} holds {len(files)} *.gguf files; a llama.cpp variant holds exactly one "
                             "(built by the gguf export step)")
    config = _json(model_dir / "config.json")
    llm = llama_cpp.Llama(
        model_path=str(files[0]), n_ctx=min(MAX_CTX, config.get("max_position_embeddings") or MAX_CTX),
        n_threads=threads, n_threads_batch=threads, n_gpu_layers=-1 if device == "cuda" else 0,
        flash_attn=device == "cuda",  # llama.cpp's own default ("auto") turns it on where the GPU supports it
        verbose=False)
    tokenizer = load_tokenizer(model_dir)
    return LlamaCppRuntime(llm, tokenizer, device, _eos_ids(model_dir, config, tokenizer))


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _eos_ids(model_dir: Path, config: dict, tokenizer) -> list[int]:
    """The end-of-sequence ids generation stops at (and `ignore_eos` suppresses): those of generation_config.json,
    else config.json, as transformers' generate uses them, so both runtimes stop, or not, at the same tokens."""
    eos = _json(model_dir / "generation_config.json").get("eos_token_id", config.get("eos_token_id"))
    if eos is None:
        eos = tokenizer.eos_token_id
    return sorted({eos} if isinstance(eos, int) else set(eos or []))


class LlamaCppRuntime:
    name = NAME

    def __init__(self, llm, tokenizer, device: str, eos_ids: list[int]):
        import llama_cpp

        self.llm, self.tokenizer, self.device = llm, tokenizer, device
        self._lib = llama_cpp
        self._ctx = llm.ctx
        self._n_ctx, self._n_vocab, self._n_batch = llm.n_ctx(), llm.n_vocab(), llm.n_batch
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        self._eos, self._eos_set = np.array(eos_ids, dtype=np.int64), frozenset(eos_ids)
        self._kv: list[int] = []  # the tokens in the KV cache, position i holds _kv[i]
        self._batched = None  # a BatchDecoder, made the first time several prompts are generated together

    # --- the KV state and one forward pass -------------------------------------------------------------------

    def _truncate(self, n: int) -> None:
        """Keep the first n positions of the KV cache."""
        memory = self._lib.llama_get_memory(self._ctx)
        if n == 0 or not self._lib.llama_memory_seq_rm(memory, -1, n, -1):
            self._lib.llama_memory_clear(memory, True)
            n = 0
        del self._kv[n:]

    def _decode(self, ids: list[int], every_position: bool) -> np.ndarray:
        """Append `ids` to the KV state; the logits of every position [len(ids), vocab] (a copy), or of the last
        position [vocab] (a view into llama.cpp's buffer, valid until the next decode)."""
        if not ids and not every_position:
            raise ValueError("llama.cpp: no token ids to decode")
        if len(self._kv) + len(ids) > self._n_ctx:
            raise ValueError(f"llama.cpp: {len(self._kv)} + {len(ids)} tokens exceed the context of {self._n_ctx} "
                             f"(tasks/runtimes/llamacpp.py MAX_CTX)")
        rows = []
        for start in range(0, len(ids), self._n_batch):
            chunk = ids[start:start + self._n_batch]
            last_chunk = start + self._n_batch >= len(ids)
            batch = self._batch
            token, pos, n_seq, seq, want = batch.token, batch.pos, batch.n_seq_id, batch.seq_id, batch.logits
            for i, t in enumerate(chunk):
                token[i], pos[i], n_seq[i], want[i] = t, len(self._kv) + i, 1, every_position
                seq[i][0] = 0
            want[len(chunk) - 1] = every_position or last_chunk
            batch.n_tokens = len(chunk)
            rc = self._lib.llama_decode(self._ctx, batch)
            if rc != 0:
                raise RuntimeError(f"llama_decode returned {rc} at position {len(self._kv)}")
            self._kv.extend(chunk)
            if every_position:
                rows.append(np.ctypeslib.as_array(self._lib.llama_get_logits(self._ctx),
                                                  shape=(len(chunk), self._n_vocab)).copy())
        if every_position:
            return np.concatenate(rows) if rows else np.zeros((0, self._n_vocab), dtype=np.float32)
        return np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self._ctx, -1), shape=(self._n_vocab,))

    def _pick(self, logits: np.ndarray, ignore_eos: bool, temperature: float, rng) -> int:
        if temperature <= 0:
            token = int(np.argmax(logits))
            if not (ignore_eos and token in self._eos_set):
                return token
        logits = logits.astype(np.float64)
        if ignore_eos:
            logits[self._eos] = -np.inf  # as transformers' min_new_tokens: end of sequence is never chosen
        if temperature <= 0:
            return int(np.argmax(logits))
        z = logits / temperature  # plain temperature sampling over the whole vocabulary (no top-k / top-p)
        p = np.exp(z - z.max())
        return int(rng.choice(len(p), p=p / p.sum()))

    # --- the Runtime protocol -----------------------------------------------------------------------------------

    def generate(self, ids: list[int], max_new_tokens: int, *, ignore_eos: bool = True,
                 temperature: float = 0.0, seed: int = 0) -> Generation:
        clock = StepClock()
        rng = np.random.default_rng(seed) if temperature > 0 else None
        self._truncate(0)  # every request starts from an empty KV state, as in the transformers runtime
        logits = self._decode(list(ids), every_position=False)
        new: list[int] = []
        for step in range(max_new_tokens):
            if step:
                logits = self._decode(new[-1:], every_position=False)
            token = self._pick(logits, ignore_eos, temperature, rng)
            clock.tick()
            if not ignore_eos and token in self._eos_set:
                break
            new.append(token)
        return clock.generation(len(ids), new, self.tokenizer.decode(new, skip_special_tokens=True))

    def generate_batch(self, batch: list[list[int]], max_new_tokens: int) -> int:
        return sum(len(new) for new, _ in self._many(batch, max_new_tokens, ignore_eos=True))

    def generate_many(self, batch: list[list[int]], max_new_tokens: int) -> list[Generation]:
        """Greedy generation for several prompts decoded together, each stopping at end of sequence (the serving
        path: `greenlane serve` batches concurrent requests; see tasks/runtimes/llamacpp_batch.py)."""
        return [clock.generation(len(ids), new, self.tokenizer.decode(new, skip_special_tokens=True))
                for ids, (new, clock) in zip(batch, self._many(batch, max_new_tokens, ignore_eos=False))]

    def _many(self, batch: list[list[int]], max_new_tokens: int, ignore_eos: bool):
        if self._batched is None:
            from tasks.runtimes.llamacpp_batch import BatchDecoder

            self._batched = BatchDecoder(self._lib, self.llm, self._n_vocab)
        stop = frozenset() if ignore_eos else self._eos_set
        return self._batched.generate([list(ids) for ids in batch], max_new_tokens,
                                      lambda logits: self._pick(logits, ignore_eos, 0.0, None), stop)

    def prefill(self, ids: list[int]) -> None:
        self._truncate(0)
        self._decode(list(ids), every_position=False)
        self._lib.llama_synchronize(self._ctx)

    def logits(self, ids: list[int], prefix: list[int] | None = None) -> np.ndarray:
        prefix = list(prefix or [])
        if self._kv[:len(prefix)] == prefix:
            self._truncate(len(prefix))  # the prefix's KV state is already there: keep it, drop what followed
        if self._kv != prefix:  # not there, or the cache could not be cut: evaluate the prefix afresh
            self._truncate(0)
            if prefix:
                self._decode(prefix, every_position=False)
        return self._decode(list(ids), every_position=True)

    def memory_footprint_mb(self) -> float:
        return self._lib.llama_model_size(self.llm.model) / 1e6

    def close(self) -> None:
        if self._batched is not None:
            self._batched.close()
            self._batched = None
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None
        self._kv.clear()
        self.llm.close()
