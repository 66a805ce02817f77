"""KL to the baseline and top-1 agreement: the bucket arithmetic by hand, then tiny models end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.errors import GreenlaneError
from tasks.measurement import accuracy, fidelity

EXAMPLES = accuracy.load_split("sentiment", "eval", 4)


def test_bucket_kl_by_hand():
    # vocab of 3, top-2 kept: the rest bucket is exactly the third token, so the figure is the full KL
    p, q = np.log([[0.5, 0.3]]), np.log([[0.2, 0.3]])
    expected = 0.5 * math.log(0.5 / 0.2) + 0.2 * math.log(0.2 / 0.5)
    assert fidelity._bucket_kl(p, q)[0] == pytest.approx(expected)
    assert fidelity._bucket_kl(p, p)[0] == 0.0


def test_bucket_kl_is_a_lower_bound():
    p_full, q_full = np.array([0.4, 0.3, 0.2, 0.1]), np.array([0.1, 0.2, 0.3, 0.4])
    full = float(np.sum(p_full * np.log(p_full / q_full)))
    bucket = fidelity._bucket_kl(np.log(p_full[None, :2]), np.log(q_full[None, :2]))[0]
    assert 0 < bucket < full


def _compare(model_dir, ref):
    from tasks import runtimes

    comparison = fidelity.Comparison(ref)
    accuracy.task_accuracy(runtimes.load(model_dir), EXAMPLES, "sentiment", observe=comparison)
    return comparison.result()


@pytest.fixture(scope="module")
def reference(tiny_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("ref") / "reference.npz"
    return cache, fidelity.load_or_build_reference(tiny_dir, EXAMPLES, "sentiment", cache)


def test_identical_model_has_zero_kl(tiny_dir, reference):
    out = _compare(tiny_dir, reference[1])
    assert out["kl_to_baseline"] == pytest.approx(0.0, abs=1e-9) and out["top1_agreement"] == 1.0
    assert out["fidelity_positions"] == len(reference[1].token_ids)


def test_the_reference_keeps_the_base_models_own_answers(tiny_dir, reference):
    """The baseline reads its accuracy back from the reference pass; it must be what scoring it again gives."""
    from tasks import runtimes

    again = accuracy.task_accuracy(runtimes.load(tiny_dir), EXAMPLES, "sentiment")
    kept = fidelity.Reference.load(reference[0])
    assert kept.accuracy() == again
    assert kept.device == "cpu"
    assert kept.identity()["fidelity_positions"] == len(kept.token_ids)


def test_different_model_has_positive_kl(tiny_dir, reference, tmp_path):
    import torch

    from tasks.models import load_model, save_model

    # A tiny random Llama with tied embeddings mostly predicts its input token, whatever its seed; random
    # signs on the final norm's gains move the argmax, so this variant really disagrees with the base.
    model, tok = load_model(tiny_dir)
    with torch.no_grad():
        model.model.norm.weight.copy_(torch.randn(model.model.norm.weight.shape, generator=torch.Generator().manual_seed(0)) * 4)
    other = save_model(model, tok, tmp_path / "other")
    out = _compare(other, reference[1])
    # near-uniform random-model distributions: the top-32 bucket bound is small but far above identical's ~0
    assert out["kl_to_baseline"] > 1e-5 and out["top1_agreement"] < 1.0


def test_cache_is_reused_and_invalidated(tiny_dir, reference, monkeypatch):
    cache, ref = reference
    calls = []
    real = fidelity.build_reference
    monkeypatch.setattr(fidelity, "build_reference", lambda *a: calls.append(a) or real(*a))
    again = fidelity.load_or_build_reference(tiny_dir, EXAMPLES, "sentiment", cache)
    assert not calls and np.array_equal(again.topk_logp, ref.topk_logp)
    fewer = fidelity.load_or_build_reference(tiny_dir, EXAMPLES[:2], "sentiment", cache)  # other eval set: rebuilt
    assert len(calls) == 1 and len(fewer.offsets) == 3


def test_mismatched_examples_fail_loudly(tiny_dir, reference):
    comparison = fidelity.Comparison(reference[1])
    with pytest.raises(GreenlaneError, match="tokenizes differently"):
        comparison(np.array([1, 2, 3]), np.zeros((3, 10), dtype=np.float32))
