"""Unstructured magnitude sparsity: zero the smallest weights of every linear layer.

No CPU speedup and no size gain: the zeros are stored and multiplied like
any other number (dense safetensors, dense matmuls). It is here as the
reference point for what unstructured pruning costs in quality; use `prune`
for a model that is actually smaller and faster. Embeddings (tied to the
LM head in SmolLM2) are left whole.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

NOTE = "zeros stored densely: no CPU speedup, no size gain"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    sparsity: float = Field(0.3, gt=0, lt=1)
    """Fraction of each decoder linear layer's weights set to zero, in (0, 1)."""


def apply(in_dir: Path, cfg: Config, out_dir: Path) -> dict:
    import torch

    from tasks.models import load_model, save_model

    model, tokenizer = load_model(in_dir)
    zeroed = 0
    with torch.no_grad():
        for module in model.model.layers.modules():
            if isinstance(module, torch.nn.Linear):
                w = module.weight
                k = int(w.numel() * cfg.sparsity)
                threshold = w.abs().flatten().kthvalue(k).values
                mask = w.abs() <= threshold
                w[mask] = 0
                zeroed += int(mask.sum())
    save_model(model, tokenizer, out_dir)
    total = model.num_parameters()
    return {"param_count": total, "nonzero_params": total - zeroed, "sparsity": cfg.sparsity, "note": NOTE}
