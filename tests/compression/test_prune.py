"""Structured pruning: sliced (not zeroed) MLP channels and dropped layers, reloading with a correct config."""

import json

import pytest

from tasks.compression import validate_step
from tasks.errors import GreenlaneError


def test_prune_slices_mlp_channels_and_the_config_says_so(tiny_dir, build):
    import torch

    from tasks.models import load_model

    out, meta = build(tiny_dir, [{"method": "prune", "ratio": 0.25}])
    config = json.loads((out / "config.json").read_text())
    assert config["intermediate_size"] == 96  # 128 * 0.75, a multiple of 32
    model, tok = load_model(out)
    assert model.model.layers[0].mlp.down_proj.weight.shape == (64, 96)
    removed = 2 * 3 * 64 * 32  # two layers x (gate, up, down) x hidden x removed channels
    assert meta["param_count"] == load_model(tiny_dir)[0].num_parameters() - removed == model.num_parameters()
    assert meta["chain"][0]["intermediate_size"] == "128->96"
    with torch.inference_mode():
        assert torch.isfinite(model(input_ids=tok("Hello there", return_tensors="pt")["input_ids"]).logits).all()
    assert json.loads((out / "prune" / "source.json").read_text())["unpruned_dir"] == str(tiny_dir)


def test_prune_keeps_the_channels_that_carry_the_most_activation(tiny_dir):
    import torch

    from tasks.compression import prune
    from tasks.models import load_model

    model, _ = load_model(tiny_dir)
    scores = prune.channel_importance(model, [torch.tensor([[1, 2, 3, 4, 5, 6]])])
    assert len(scores) == 2 and scores[0].shape == (128,) and (scores[0] >= 0).all()
    keep = torch.topk(scores[0], 96).indices.sort().values
    down = model.model.layers[0].mlp.down_proj.weight.detach().clone()
    prune.prune_mlp_channels(model, scores, 96)
    assert torch.equal(model.model.layers[0].mlp.down_proj.weight, down[:, keep])


def test_prune_drops_the_least_influential_layers_and_renumbers_the_cache(tiny4_dir, build):
    import torch

    from tasks.models import load_model

    out, meta = build(tiny4_dir, [{"method": "prune", "ratio": 0.25, "layer_ratio": 0.25}])
    step = meta["chain"][0]
    assert step["num_hidden_layers"] == "4->3" and len(step["dropped_layers"]) == 1
    assert step["dropped_layers"][0] not in (0, 3)  # first and last are kept
    model, tok = load_model(out)
    assert model.config.num_hidden_layers == 3 and len(model.model.layers) == 3
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == [0, 1, 2]
    ids = tok("Hello", return_tensors="pt")["input_ids"]
    with torch.inference_mode():  # generation with a KV cache indexes layers by layer_idx
        generated = model.generate(ids, max_new_tokens=4, do_sample=False, min_new_tokens=4)
    assert generated.shape[1] == ids.shape[1] + 4


@pytest.mark.parametrize("field, value", [("ratio", 0), ("ratio", 1), ("ratio", 1.5), ("ratio", -0.1), ("layer_ratio", 1)])
def test_a_ratio_outside_its_range_fails_at_validation_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"v\.chain\[0\]\.{field}: .*"):
        validate_step("prune", {field: value}, where="v.chain[0]")


def test_too_many_layers_to_drop_fails_before_any_work(tiny_dir, build, monkeypatch):
    from tasks.compression import prune

    monkeypatch.setattr(prune, "apply", lambda *a: pytest.fail("apply ran"))
    with pytest.raises(GreenlaneError, match=r"v\.chain\[0\]: prune\.layer_ratio=0\.5 would drop 1 of 2 layers"):
        build(tiny_dir, [{"method": "prune", "layer_ratio": 0.5}])


@pytest.mark.slow
def test_prune_on_smollm2_is_smaller_and_still_a_language_model(smol_dir, build):
    from tasks import runtimes
    from tasks.measurement.accuracy import heldout_text, perplexity
    from tasks.models import dir_size_mb, load_model

    out, meta = build(smol_dir, [{"method": "prune", "ratio": 0.25, "calibration_samples": 32}])
    model, tok = load_model(out)
    assert model.config.intermediate_size == 1152
    assert meta["size_mb"] < 0.9 * dir_size_mb(smol_dir)
    # Unhealed pruning costs quality (prune -> distill heals it); it must not destroy the model.
    assert perplexity(runtimes.load(out), heldout_text(), 256)["perplexity"] < 150
