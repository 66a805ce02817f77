"""Compression methods, one module each, all the same shape.

A method module defines `Config` (a pydantic model: its fields are the
method's parameters, documented and validated) and
`apply(in_dir: Path, cfg: Config, out_dir: Path) -> dict`, which reads a
variant directory, writes a new self-contained one and returns facts about
the step (e.g. `{"param_count": ...}`). Heavy imports stay inside `apply`.

Adding a method is one file plus one line in `METHODS`.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from pydantic import ValidationError

METHODS = {
    "cast": "tasks.compression.cast",
    "bnb": "tasks.compression.bnb",
    "quanto": "tasks.compression.quanto",
    "prune": "tasks.compression.prune",
    "sparsity": "tasks.compression.sparsity",
    "distill": "tasks.compression.distill",
    "lora": "tasks.compression.lora",
    "onnx": "tasks.compression.onnx",
    "gguf": "tasks.compression.gguf",
}

# Methods whose output is quantized weights that no other method can take as input: they go last in a chain.
QUANTIZED_OUTPUT = {"bnb", "quanto"}

# Built-in variants a config may name with a bare string.
PRESETS: dict[str, list[dict[str, Any]]] = {
    "baseline": [],
    "bf16": [{"method": "cast", "dtype": "bfloat16"}],
    "fp16": [{"method": "cast", "dtype": "float16"}],
    "bnb-int8": [{"method": "bnb", "bits": 8}],
    "bnb-nf4": [{"method": "bnb", "bits": 4, "quant_type": "nf4"}],
    "bnb-fp4": [{"method": "bnb", "bits": 4, "quant_type": "fp4"}],
    "quanto-int8": [{"method": "quanto", "weights": "qint8"}],
    "quanto-int4": [{"method": "quanto", "weights": "qint4"}],
    "prune": [{"method": "prune", "ratio": 0.25}],
    "sparse": [{"method": "sparsity", "sparsity": 0.3}],
    "distill": [{"method": "distill", "layer_ratio": 0.2}],
    "lora": [{"method": "lora"}],
    "qlora": [{"method": "lora", "base_bits": 4}],
    "prune-heal": [{"method": "prune", "ratio": 0.25}, {"method": "distill", "layer_ratio": 0.0}],
    "prune-heal-nf4": [{"method": "prune", "ratio": 0.25}, {"method": "distill", "layer_ratio": 0.0},
                       {"method": "bnb", "bits": 4, "quant_type": "nf4"}],
    "lora-int8": [{"method": "lora"}, {"method": "bnb", "bits": 8}],
    "onnx-fp32": [{"method": "onnx", "precision": "fp32"}],
    "onnx-int8": [{"method": "onnx", "precision": "int8", "accuracy_level": 4}],
    "onnx-int4": [{"method": "onnx", "precision": "int4", "accuracy_level": 4}],
    "gguf-q8_0": [{"method": "gguf", "quant": "q8_0"}],
    "gguf-q4_k_m": [{"method": "gguf", "quant": "q4_k_m"}],
    "gguf-q5_k_m": [{"method": "gguf", "quant": "q5_k_m"}],
    "lora-gguf-q8_0": [{"method": "lora"}, {"method": "gguf", "quant": "q8_0"}],
}


def method_module(name: str) -> ModuleType:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered methods: {', '.join(sorted(METHODS))}")
    return importlib.import_module(METHODS[name])


def validate_step(method: str, params: dict[str, Any], where: str = "step"):
    """Return the method's validated Config; ValueError naming `where` and the field otherwise."""
    try:
        module = method_module(method)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    try:
        return module.Config.model_validate(params)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where}.{field}: {first['msg'].removeprefix('Value error, ')}") from None
