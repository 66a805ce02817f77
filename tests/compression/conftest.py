"""Fixtures for the compression tests: a deeper tiny model (layer dropping needs more than two layers)."""

from pathlib import Path

import pytest

from tasks.config import VariantSpec
from tasks.variants import build_variant


@pytest.fixture(scope="session")
def tiny4_dir(smol_dir, tmp_path_factory) -> Path:
    from tasks.models import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama-4", tokenizer_dir=smol_dir, num_layers=4)


@pytest.fixture
def build(tmp_path):
    """`build(base_dir, chain, name="v", task="sentiment")` -> (variant_dir, metadata), via the same build_variant
    the DAG uses (`task`: the run's eval task, which training methods learn from)."""

    def _build(base_dir: Path, chain: list[dict], name: str = "v", task: str = "sentiment"):
        out = tmp_path / name
        meta = build_variant(base_dir, VariantSpec(name=name, chain=chain), out, base_model=str(base_dir), task=task)
        return out, meta

    return _build


@pytest.fixture
def logits():
    """`logits(model_dir)` -> the reloaded model's logits for a fixed short text."""
    return _logits


@pytest.fixture
def stored_dtype():
    """`stored_dtype(model_dir, tensor_name)` -> its safetensors dtype, e.g. "I8"."""
    return _stored_dtype


def _logits(model_dir: Path, text: str = "The weather today is"):
    import torch

    from tasks.models import load_model

    model, tok = load_model(model_dir)
    with torch.inference_mode():
        return model(input_ids=tok(text, return_tensors="pt")["input_ids"]).logits.float()


def _stored_dtype(model_dir: Path, tensor: str) -> str:
    from safetensors import safe_open

    with safe_open(str(Path(model_dir) / "model.safetensors"), framework="pt") as st:
        return st.get_slice(tensor).get_dtype()
