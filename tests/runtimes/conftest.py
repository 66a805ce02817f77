"""The tiny random Llama in every registered runtime's format, built by the same export steps the DAG uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.config import VariantSpec
from tasks.runtimes import RUNTIMES
from tasks.variants import build_variant

# The f32 export of each runtime: full precision, so its numbers must match transformers' closely.
F32_EXPORT = {
    "transformers": [],
    "llama.cpp": [{"method": "gguf", "quant": "f32"}],
    "onnxruntime-genai": [{"method": "onnx", "precision": "fp32"}],
}


@pytest.fixture(scope="session")
def tiny_in(tiny_dir, tmp_path_factory):
    """`tiny_in(runtime)` -> the tiny model's directory in that runtime's format (built once per session)."""
    built: dict[str, Path] = {}

    def _get(runtime: str) -> Path:
        if runtime not in built:
            if not F32_EXPORT[runtime]:
                built[runtime] = tiny_dir
            else:
                out = tmp_path_factory.mktemp("runtimes") / runtime
                build_variant(tiny_dir, VariantSpec(name=f"tiny-{runtime}", chain=F32_EXPORT[runtime]), out,
                              base_model=str(tiny_dir))
                built[runtime] = out
        return built[runtime]

    return _get


def pytest_generate_tests(metafunc):
    if "runtime_name" in metafunc.fixturenames:
        metafunc.parametrize("runtime_name", list(RUNTIMES))
