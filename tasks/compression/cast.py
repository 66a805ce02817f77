"""Cast every floating-point weight to a lower-precision dtype (bf16 / fp16)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    dtype: Literal["bfloat16", "float16"] = "bfloat16"
    """Target dtype. bfloat16 keeps fp32's range; float16 is faster on many GPUs but can overflow."""


def apply(in_dir: Path, cfg: Config, out_dir: Path) -> dict:
    import torch

    from tasks.models import load_model, save_model

    model, tokenizer = load_model(in_dir)
    model = model.to(getattr(torch, cfg.dtype))
    save_model(model, tokenizer, out_dir)
    return {"param_count": model.num_parameters(), "dtype": cfg.dtype}
