"""Unstructured magnitude sparsity: the smallest weights become zeros, stored densely."""

import pytest


def test_sparsity_zeroes_the_smallest_decoder_weights_and_says_it_gives_no_speedup(tiny_dir, build):
    import torch

    from tasks.models import load_model

    out, meta = build(tiny_dir, [{"method": "sparsity", "sparsity": 0.4}])
    base, _ = load_model(tiny_dir)
    model, _ = load_model(out)
    w, w0 = model.model.layers[1].self_attn.q_proj.weight, base.model.layers[1].self_attn.q_proj.weight
    assert abs(float((w == 0).float().mean()) - 0.4) < 0.01
    assert float(w0[w == 0].abs().max()) <= float(w0[w != 0].abs().min())  # by magnitude
    assert torch.equal(model.model.embed_tokens.weight, base.model.embed_tokens.weight)
    assert meta["param_count"] == base.num_parameters()
    step = meta["chain"][0]
    assert step["nonzero_params"] < step["param_count"] and "no CPU speedup" in step["note"]


@pytest.mark.slow
def test_sparsity_on_smollm2_keeps_a_working_model(smol_dir, build):
    from tasks import runtimes
    from tasks.measurement.accuracy import heldout_text, perplexity

    out, meta = build(smol_dir, [{"method": "sparsity", "sparsity": 0.3}])
    assert 0.2 < 1 - meta["chain"][0]["nonzero_params"] / meta["param_count"] < 0.3  # embeddings stay dense
    assert perplexity(runtimes.load(out), heldout_text(), 256)["perplexity"] < 100
