"""optimum-quanto: int8 / packed int4 weights, saved and reloaded through quanto's own class."""

import json

import pytest

from tasks.errors import GreenlaneError


# int4 weights are packed two per byte, one level deeper in quanto's tensor tree.
@pytest.mark.parametrize("weights, tensor, stored", [("qint8", "weight._data", "I8"), ("qint4", "weight._data._data", "U8")])
def test_quanto_variant_reloads_with_quantized_linear_weights(tiny_dir, build, logits, stored_dtype, weights, tensor, stored):
    import torch
    from optimum.quanto import QLinear

    from tasks.models import load_model

    out, meta = build(tiny_dir, [{"method": "quanto", "weights": weights}])
    assert (out / "quanto_qmap.json").is_file()
    qmap = json.loads((out / "quanto_qmap.json").read_text())
    assert "lm_head" not in qmap and "model.layers.0.mlp.down_proj" in qmap
    assert stored_dtype(out, f"model.layers.0.mlp.down_proj.{tensor}") == stored
    assert meta["param_count"] == load_model(tiny_dir)[0].num_parameters()  # logical count, before packing
    model, _ = load_model(out)
    assert isinstance(model.model.layers[0].mlp.down_proj, QLinear)
    base, quant = logits(tiny_dir), logits(out)
    assert torch.isfinite(quant).all()
    # int8 barely moves a random model's logits; int4 moves them more but keeps them correlated.
    assert torch.corrcoef(torch.stack([base.flatten(), quant.flatten()]))[0, 1] > (0.99 if weights == "qint8" else 0.9)
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():  # logits() ran under inference_mode; generation here runs under no_grad: both work
        assert model.generate(ids, max_new_tokens=2, min_new_tokens=2, do_sample=False).shape == (1, 5)


def test_quanto_variant_refuses_other_loading_options(tiny_dir, build):
    from tasks.models import load_model

    out, _ = build(tiny_dir, [{"method": "quanto"}])
    with pytest.raises(GreenlaneError, match="already quantized by optimum-quanto"):
        load_model(out, dtype="bfloat16")


@pytest.mark.slow
def test_quanto_int8_on_smollm2_keeps_quality_at_under_half_the_size(smol_dir, build):
    from tasks import runtimes
    from tasks.measurement.accuracy import heldout_text, perplexity
    from tasks.models import dir_size_mb

    out, meta = build(smol_dir, [{"method": "quanto", "weights": "qint8"}])
    assert meta["size_mb"] < 0.5 * dir_size_mb(smol_dir)
    text = heldout_text()
    base = perplexity(runtimes.load(smol_dir), text, 256)["perplexity"]
    quant = perplexity(runtimes.load(out), text, 256)["perplexity"]
    assert quant < base * 1.05
