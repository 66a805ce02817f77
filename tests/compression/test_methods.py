"""Each built-in variant on the tiny model: output reloads, shrinks as expected, metadata complete."""

import json

import pytest

from tasks.compression import METHODS, PRESETS, method_module
from tasks.config import VariantSpec
from tasks.variants import METADATA, build_variant


def test_every_registered_method_resolves_with_config_and_apply():
    for name in METHODS:
        module = method_module(name)
        assert callable(module.apply) and hasattr(module.Config, "model_validate"), name


# The tiny model is mostly embedding, which bitsandbytes leaves in full precision, so for the
# bnb presets the check is that the linear weights are stored packed, not the total size ratio.
@pytest.mark.parametrize(
    "preset, max_size_ratio, linear_dtype",
    [("baseline", 1.0, "F32"), ("bf16", 0.51, "BF16"), ("bnb-int8", 0.99, "I8"), ("bnb-nf4", 0.99, "U8")],
)
def test_preset_builds_a_reloadable_smaller_variant(tiny_dir, tmp_path, preset, max_size_ratio, linear_dtype):
    import torch

    from tasks.models import dir_size_mb, load_model

    spec = VariantSpec(name=preset, chain=PRESETS[preset])
    out = tmp_path / preset
    meta = build_variant(tiny_dir, spec, out, base_model=str(tiny_dir))
    assert json.loads((out / METADATA).read_text()) == meta
    assert {"name", "chain", "chain_str", "param_count", "size_mb", "base_model"} <= meta.keys()
    assert meta["size_mb"] <= dir_size_mb(tiny_dir) * max_size_ratio + 1e-9
    base_params = build_variant(tiny_dir, VariantSpec(name="baseline"), tmp_path / "b", str(tiny_dir))["param_count"]
    assert meta["param_count"] == base_params  # quantization and casts keep every parameter
    assert _stored_dtype(out, "model.layers.0.mlp.down_proj.weight") == linear_dtype

    model, tok = load_model(out)
    ids = tok("Hello there", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=ids).logits
    assert logits.shape[-1] == model.config.vocab_size and torch.isfinite(logits.float()).all()


def test_rebuilding_overwrites_instead_of_duplicating(tiny_dir, tmp_path):
    spec = VariantSpec(name="bf16", chain=PRESETS["bf16"])
    build_variant(tiny_dir, spec, tmp_path / "v", str(tiny_dir))
    build_variant(tiny_dir, spec, tmp_path / "v", str(tiny_dir))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]  # no leftover temp dirs


def test_baseline_of_a_variant_leaves_the_base_metadata_alone(tiny_dir, tmp_path):
    """The baseline hard-links the base's files; its own metadata must not write through into the base."""
    base = tmp_path / "base"
    build_variant(tiny_dir, VariantSpec(name="lora-ish", chain=PRESETS["bf16"]), base, str(tiny_dir))
    before = (base / METADATA).read_text()
    build_variant(base, VariantSpec(name="baseline"), tmp_path / "baseline", str(base))
    assert (base / METADATA).read_text() == before
    assert json.loads((tmp_path / "baseline" / METADATA).read_text())["name"] == "baseline"


def _stored_dtype(model_dir, tensor):
    from safetensors import safe_open

    with safe_open(str(next(model_dir.glob("*.safetensors"))), framework="pt") as st:
        return st.get_slice(tensor).get_dtype()
