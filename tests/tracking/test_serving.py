"""The pyfunc servable: logged to a real SQLite MLflow store, registered, loaded back by alias, and generating in
the variant's own runtime with the params the caller passes (none dropped by MLflow)."""

from __future__ import annotations

import logging

import pytest

from tasks import runtimes
from tasks.tracking import registry, runs, serving

# The export step that puts a variant in each runtime (transformers: the plain checkpoint, no step).
EXPORTS = {
    "transformers": [],
    "llama.cpp": [{"method": "gguf", "quant": "f32"}],
    "onnxruntime-genai": [{"method": "onnx", "precision": "fp32"}],
}


@pytest.fixture(params=list(EXPORTS))
def variant_dir(request, tiny_dir, tmp_path):
    from tasks.compression import METHODS
    from tasks.config import VariantSpec
    from tasks.variants import build_variant

    chain = EXPORTS[request.param]
    if not chain:
        return tiny_dir
    if chain[0]["method"] not in METHODS:
        pytest.skip(f"export method {chain[0]['method']} is not registered yet")
    out = tmp_path / "variant"
    build_variant(tiny_dir, VariantSpec(name="v", chain=chain), out, base_model=str(tiny_dir))
    assert runtimes.runtime_of(out) == request.param
    return out


@pytest.fixture
def mlflow_warnings(caplog):
    """Warnings MLflow logs (its loggers do not propagate to the root, where caplog listens)."""
    logger = logging.getLogger("mlflow")
    logger.addHandler(caplog.handler)
    try:
        yield lambda: [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        logger.removeHandler(caplog.handler)


def test_servable_generates_in_its_runtime_with_the_callers_params(variant_dir, tmp_path, mlflow_warnings):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = runs.ensure_experiment(uri, "e", artifact_location=(tmp_path / "art").as_uri())
    run_id = runs.ensure_run(uri, exp, key="r/v", run_name="v")
    serving.log_servable(uri, run_id, variant_dir, "model")
    version = registry.register_variant(uri, "m", run_id, "v")
    registry.promote(uri, "m", "cpu", version, is_default=False, decision_note="test")

    model = serving.load_servable(uri, "models:/m@champion-cpu", dst=tmp_path / "served")
    assert model.metadata.get_params_schema().to_dict() == [
        {"name": "max_new_tokens", "default": 64, "shape": None, "type": "long"},
        {"name": "temperature", "default": 0.0, "shape": None, "type": "double"},
        {"name": "seed", "default": 0, "shape": None, "type": "long"},
    ]
    pins = (tmp_path / "served" / "model" / "requirements.txt").read_text()
    assert "transformers==" in pins and "torch==" in pins
    assert ("llama-cpp-python==" in pins) == (runtimes.runtime_of(variant_dir) == "llama.cpp")
    assert ("onnxruntime-genai==" in pins) == (runtimes.runtime_of(variant_dir) == "onnxruntime-genai")

    # What the variant's runtime says itself, greedily: the tiny random model does not stop early.
    from tasks.runtimes.base import chat_ids

    runtime = runtimes.load(variant_dir, "cpu")
    try:
        expected = {}
        for n in (5, 12):
            generation = runtime.generate(chat_ids(runtime.tokenizer, "Hi"), n, ignore_eos=False)
            assert generation.output_tokens == n, "the tiny model stopped at end of sequence; pick another prompt"
            expected[n] = runtime.tokenizer.decode(generation.token_ids, skip_special_tokens=True)
    finally:
        runtime.close()

    assert model.predict(["Hi"], params={"max_new_tokens": 5}) == [expected[5]]
    assert model.predict(["Hi", "Hi"], params={"max_new_tokens": 12}) == [expected[12]] * 2
    assert expected[5] != expected[12]
    sampled = model.predict(["Hi"], params={"max_new_tokens": 12, "temperature": 1.0, "seed": 3})
    assert sampled == model.predict(["Hi"], params={"max_new_tokens": 12, "temperature": 1.0, "seed": 3})
    assert sampled != [expected[12]]  # sampling over a random model's flat distribution is not greedy
    assert not [m for m in mlflow_warnings() if "param" in m.lower()]
