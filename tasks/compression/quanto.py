"""optimum-quanto weight quantization (qint8 / qint4): the `optimum` path.

Linear weights are stored as int8 (or packed int4) with per-group scales;
activations stay in floating point. The variant is saved with quanto's own
`QuantizedModelForCausalLM` and carries `quanto_qmap.json`, which
`tasks.models.load_model` recognises to reload it the same way. On CPU quanto
dequantizes weights for each matmul, so the variant is smaller on disk and in
memory but not faster; the benchmark shows the cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    weights: Literal["qint8", "qint4"] = "qint8"
    """Weight type: qint8 (per-channel int8) or qint4 (int4 in groups of 128, packed two per byte)."""
    exclude: list[str] = ["lm_head"]
    """Module name patterns (fnmatch) left in floating point. lm_head is tied to the embedding in SmolLM2:
    quantizing it would untie them and store the embedding twice."""


def apply(in_dir: Path, cfg: Config, out_dir: Path) -> dict:
    import optimum.quanto as oq

    from tasks.models import load_model, replace_dir

    model, tokenizer = load_model(in_dir)
    param_count = model.num_parameters()  # before packing, which changes tensor shapes
    qmodel = oq.QuantizedModelForCausalLM.quantize(model, weights=getattr(oq, cfg.weights), exclude=cfg.exclude or None)
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    qmodel.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "README.md").unlink(missing_ok=True)  # an empty model card quanto's save writes
    replace_dir(tmp, out_dir)
    return {"param_count": param_count, "weights": cfg.weights}
