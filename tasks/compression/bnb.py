"""bitsandbytes quantization: LLM.int8 (8-bit) or 4-bit (nf4 / fp4).

The quantized weights are saved with their quantization config, so the
variant reloads with a plain `from_pretrained`. bitsandbytes 0.50 runs both
on CPU as well as CUDA; on CPU its kernels are slower than fp32 matmuls,
which the benchmark will show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    bits: Literal[8, 4] = 8
    """8 for LLM.int8, 4 for 4-bit."""
    quant_type: Literal["nf4", "fp4"] = "nf4"
    """4-bit data type (ignored for 8-bit)."""
    double_quant: bool = False
    """4-bit only: also quantize the quantization constants (saves ~0.4 bit/param)."""
    compute_dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    """4-bit only: dtype of the matmuls after dequantizing a block."""

    @model_validator(mode="after")
    def _only_4bit_options(self) -> "Config":
        if self.bits == 8 and self.double_quant:
            raise ValueError("double_quant applies to 4-bit only (set bits: 4)")
        return self


def check_runtime() -> None:
    """Fail before any work when bitsandbytes cannot run here."""
    from tasks.errors import GreenlaneError

    try:
        import bitsandbytes  # noqa: F401
    except Exception as err:  # ImportError, or a broken native library
        raise GreenlaneError(f"bitsandbytes cannot run on this machine: {err}") from None


def apply(in_dir: Path, cfg: Config, out_dir: Path) -> dict:
    import torch
    from transformers import BitsAndBytesConfig

    from tasks.models import load_model, save_model

    check_runtime()
    if cfg.bits == 8:
        qconfig = BitsAndBytesConfig(load_in_8bit=True)
    else:
        qconfig = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=cfg.quant_type,
            bnb_4bit_use_double_quant=cfg.double_quant,
            bnb_4bit_compute_dtype=getattr(torch, cfg.compute_dtype),
        )
    model, tokenizer = load_model(in_dir, quantization_config=qconfig)
    save_model(model, tokenizer, out_dir)
    # num_parameters() counts a packed 4-bit weight as one element per byte; ask for the logical count.
    return {"param_count": _logical_params(model), "bits": cfg.bits}


def _logical_params(model) -> int:
    total = 0
    for p in model.parameters():
        shape = getattr(getattr(p, "quant_state", None), "shape", None)
        total += shape.numel() if shape is not None else p.numel()
    return total
