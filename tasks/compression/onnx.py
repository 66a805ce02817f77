"""Export to ONNX for onnxruntime-genai, optionally int8/int4 weights: an export step, served by onnxruntime-genai.

The export is onnxruntime-genai's own model builder
(`python -m onnxruntime_genai.models.builder`), run in a subprocess. It writes
the decoder with ONNX Runtime's fused operators (GroupQueryAttention,
SkipSimplifiedLayerNormalization, rotary embeddings) and a KV cache shared
between steps; for int8/int4 it quantizes the weight of every MatMul (and the
embedding, when tied to the LM head) blockwise for the MatMulNBits kernels,
round to nearest with one fp32 scale per block, no calibration data. On
SmolLM2-135M-Instruct (held-out perplexity, 256 tokens) fp32 gives 34.01 as
transformers does, int8 34.25, int4 39.4: int4 costs quality, the gates decide.

The variant directory holds the builder's output (model.onnx,
model.onnx.data, genai_config.json) plus the input's Hugging Face tokenizer
files and config.json: every runtime tokenizes with the HF tokenizer and
feeds ORT GenAI token ids, so a prompt is the same ids in every runtime.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from tasks.errors import GreenlaneError

RUNTIME = "onnxruntime-genai"
BUILDER = "onnxruntime_genai.models.builder"
# Files besides the weights that an ONNX variant keeps (the runtime tokenizes with the HF tokenizer).
KEPT_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
              "special_tokens_map.json")
# accuracy_level when none is given, as the builder chooses it per execution provider.
DEFAULT_ACCURACY_LEVEL = {"cpu": 4, "cuda": 0}


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    precision: Literal["fp32", "int8", "int4"] = "int4"
    """Weight type. fp32: unquantized, the input's numbers exactly. int8 / int4: weight-only quantization of every
    MatMul (MatMulNBits), symmetric, in blocks of `block_size` weights with one fp32 scale each (8 or 4 bits per
    weight plus 32 / block_size for the scales). int8 keeps the embedding in fp32 (ORT's quantized Gather is int4
    only), so a tied LM head is then stored twice: SmolLM2-135M is 540 MB fp32, 267 MB int8, 87 MB int4."""
    accuracy_level: Literal[0, 1, 2, 3, 4] | None = None
    """int8/int4 only: the lowest precision a MatMulNBits kernel may compute in. 4: the activations are
    quantized to int8 on the fly and multiplied in integer arithmetic (fastest on CPU, a little less exact);
    3: bf16; 2: fp16; 1: fp32 (weights dequantized, activations exact); 0: unset, the kernel's own choice (fp32
    on CPU). None: the builder's default, 4 for cpu and 0 for cuda."""
    block_size: Literal[16, 32, 64, 128, 256] = 32
    """int8/int4 only: weights per quantization block along the input dimension. Smaller blocks: closer to the
    fp32 weights, a few more bytes of scales."""
    execution_provider: Literal["cpu", "cuda"] = "cpu"
    """The device the graph is built for (the target that serves it): cpu keeps fp32 activations; cuda uses the
    CUDA kernels' layout (fp16 activations for int8/int4). Build once per target device."""

    @field_validator("accuracy_level", "block_size")
    @classmethod
    def _quantized_only(cls, value, info: ValidationInfo):
        # Runs only when the field is given: a default never conflicts with fp32.
        if value is not None and info.data.get("precision") == "fp32":
            raise ValueError(f"{info.field_name} applies to precision int8 or int4 only, not fp32")
        return value


def check(in_dir: Path, cfg: Config) -> None:
    """Fail before any work: no builder here, an architecture the builder does not export, or quantization
    blocks that do not divide the model's rows."""
    config = Path(in_dir) / "config.json"
    hf = json.loads(config.read_text()) if config.is_file() else {}
    architectures = hf.get("architectures") or []
    if not architectures:
        raise GreenlaneError(f"onnx: {config} names no architecture (config.json `architectures`)")
    supported = builder_architectures()
    if architectures[0] not in supported:
        raise GreenlaneError(
            f"onnx: architecture {architectures[0]!r} (from {config}) is not one onnxruntime-genai's model builder "
            f"exports; it exports {', '.join(sorted(supported))}; use another export or method")
    if cfg.precision != "fp32":
        # The input dimensions of the MatMuls: a block that does not divide one is padded with zeros, stored for nothing.
        for key in ("hidden_size", "intermediate_size"):
            if isinstance(hf.get(key), int) and hf[key] % cfg.block_size:
                raise GreenlaneError(f"onnx: block_size {cfg.block_size} does not divide the model's {key} "
                                     f"({hf[key]}); choose a block size that does (16, 32, ...)")


def builder_file() -> Path:
    spec = importlib.util.find_spec("onnxruntime_genai")  # looked up, not imported: no native library loaded
    if spec is None or spec.origin is None:
        raise GreenlaneError("onnx: the python package onnxruntime-genai is not installed here (pyproject pins it; "
                             "run `make install`)")
    return Path(spec.origin).parent / "models" / "builder.py"


def builder_architectures() -> set[str]:
    """Hugging Face architecture names the builder exports, read from its source (importing it needs torch):
    `create_model` dispatches on `config.architectures[0] == "..."` comparisons."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(builder_file().read_text())):
        if not (isinstance(node, ast.Compare) and isinstance(node.left, ast.Subscript)
                and getattr(node.left.value, "attr", None) == "architectures"):
            continue
        for value in node.comparators:
            items = value.elts if isinstance(value, ast.Tuple | ast.List | ast.Set) else [value]
            names.update(i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str))
    if not names:
        raise RuntimeError(f"onnx: no architecture dispatch found in {builder_file()}; the builder's source changed "
                           "shape, update tasks/compression/onnx.py builder_architectures")
    return names


def builder_version() -> str:
    for dist in ("onnxruntime-genai", "onnxruntime-genai-cuda"):
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "onnxruntime-genai unknown"


def apply(in_dir: Path, cfg: Config, out_dir: Path) -> dict:
    from tasks.models import param_count, replace_dir

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    accuracy_level = None
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.", dir=out_dir.parent) as tmp:
        model = Path(tmp) / "model"
        cmd = [sys.executable, "-m", BUILDER, "-i", str(in_dir), "-o", str(model), "-p", cfg.precision,
               "-e", cfg.execution_provider, "-c", str(Path(tmp) / "cache")]
        if cfg.precision != "fp32":
            accuracy_level = DEFAULT_ACCURACY_LEVEL[cfg.execution_provider] if cfg.accuracy_level is None \
                else cfg.accuracy_level
            cmd += ["--extra_options", f"accuracy_level={accuracy_level}", f"block_size={cfg.block_size}"]
        out = subprocess.run(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True)
        if out.returncode != 0 or not (model / "genai_config.json").is_file():
            tail = "\n".join((out.stderr or out.stdout).strip().splitlines()[-8:])
            raise GreenlaneError(f"onnx: the onnxruntime-genai model builder failed on {in_dir} "
                                 f"(exit {out.returncode}):\n{tail}")
        # The input's own tokenizer files over the builder's re-saved ones, so the ids are the input's exactly.
        for name in KEPT_FILES:
            if (in_dir / name).is_file():
                shutil.copy2(in_dir / name, model / name)
        replace_dir(model, out_dir)
    return {"param_count": param_count(in_dir), "precision": cfg.precision, "accuracy_level": accuracy_level,
            "builder": builder_version()}
