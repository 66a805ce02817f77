"""The gguf export step on the tiny Llama: llama.cpp's converter and quantizer, served by the llama.cpp runtime.

Self-contained on purpose (the generic runtime conformance test lives in tests/runtimes): the f32 GGUF must
compute what the transformers checkpoint computes, which is what makes llama.cpp's figures comparable.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tasks.compression import validate_step
from tasks.config import VariantSpec
from tasks.errors import GreenlaneError
from tasks.variants import build_variant, check_chain

QUANTS = ("f32", "q8_0", "q4_k_m")
PROMPT = "Name three colours of the rainbow."


@pytest.fixture(scope="module")
def ggufs(tiny_dir, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """quant -> (variant_dir, metadata), each built once through build_variant as the DAG does."""
    root = tmp_path_factory.mktemp("gguf")
    built = {}
    for quant in QUANTS:
        spec = VariantSpec(name=f"gguf-{quant}", chain=[{"method": "gguf", "quant": quant}])
        built[quant] = (root / spec.name, build_variant(tiny_dir, spec, root / spec.name, base_model=str(tiny_dir)))
    return built


@pytest.fixture(scope="module")
def f32_runtime(ggufs):
    from tasks.runtimes import load

    runtime = load(ggufs["f32"][0], "cpu", threads=2)
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def hf_runtime(tiny_dir):
    from tasks.runtimes import load

    runtime = load(tiny_dir, "cpu", threads=2)
    yield runtime
    runtime.close()


@pytest.mark.parametrize("quant", QUANTS)
def test_each_quant_builds_a_llama_cpp_variant_that_generates(ggufs, tiny_dir, quant):
    from tasks.models import param_count
    from tasks.runtimes import load, runtime_of
    from tasks.runtimes.base import chat_ids

    out, meta = ggufs[quant]
    step = meta["chain"][0]
    assert meta["runtime"] == runtime_of(out) == "llama.cpp"
    assert step["quant"] == quant and step["gguf_file"] == f"model-{quant}.gguf"
    assert step["converter"].startswith("convert_hf_to_gguf.py of llama-cpp-python")
    assert meta["param_count"] == param_count(tiny_dir)
    assert [p.name for p in out.glob("*.gguf")] == [f"model-{quant}.gguf"] and not list(out.glob("*.safetensors"))
    assert {"tokenizer.json", "tokenizer_config.json", "config.json"} <= {p.name for p in out.iterdir()}

    runtime = load(out, "cpu", threads=2)
    try:
        ids = chat_ids(runtime.tokenizer, PROMPT)
        gen = runtime.generate(ids, 8)
        assert gen.prompt_tokens == len(ids) and gen.output_tokens == 8
        assert 0 < gen.ttft_s <= gen.total_s
        assert runtime.generate_batch([ids, ids[:-2]], 4) == 8
        assert 0 < runtime.memory_footprint_mb() <= meta["size_mb"] * 1.01
    finally:
        runtime.close()


def test_quantized_files_are_smaller_than_f32(ggufs):
    size = {quant: meta["size_mb"] for quant, (_, meta) in ggufs.items()}
    # Each file also holds the ~1.9 MB vocabulary. The tiny model's rows (64, 128 wide) cannot take 256-wide
    # k-quant blocks, so llama.cpp's fallback types (q5_0, q8_0) keep q4_k_m near q8_0 here.
    assert size["q8_0"] < 0.4 * size["f32"] and size["q4_k_m"] < 0.4 * size["f32"]
    assert set(ggufs["q4_k_m"][1]["chain"][0]["tensor_types"]) == {"F32", "Q5_0", "Q8_0"}


def test_f32_gguf_computes_what_the_transformers_checkpoint_computes(f32_runtime, hf_runtime):
    from tasks.runtimes.base import chat_ids

    ids = chat_ids(hf_runtime.tokenizer, PROMPT)
    ours, theirs = f32_runtime.logits(ids), hf_runtime.logits(ids)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape == (len(ids), len(hf_runtime.tokenizer))
    # Measured: max |diff| ~3e-6 against logits of magnitude ~0.5, i.e. float32 rounding of a different
    # summation order.
    assert np.abs(ours - theirs).max() < 1e-3 * np.abs(theirs).max()
    # Greedy decoding follows the same tokens.
    assert f32_runtime.generate(ids, 12).token_ids == hf_runtime.generate(ids, 12).token_ids


def test_logits_after_a_prefix_reuse_its_kv_state_and_match_a_full_pass(f32_runtime):
    from tasks.runtimes.base import chat_ids

    full = chat_ids(f32_runtime.tokenizer, PROMPT)
    prefix, ids = full[:10], full[10:]
    whole = f32_runtime.logits(full)[10:]
    first = f32_runtime.logits(ids, prefix=prefix)
    assert f32_runtime._kv[:10] == prefix  # kept for the next call with this prefix
    second = f32_runtime.logits(ids[:3], prefix=prefix)  # truncated back to the prefix, not re-evaluated
    assert np.abs(first - whole).max() < 1e-4 and np.abs(second - first[:3]).max() < 1e-5
    other = f32_runtime.logits(ids, prefix=full[1:10])  # another prefix: evaluated afresh
    assert np.abs(other - whole).max() > 1e-4
    assert np.abs(f32_runtime.logits(ids, prefix=prefix) - first).max() < 1e-5


def test_ignore_eos_gives_exactly_max_new_tokens_and_otherwise_stops(ggufs, tmp_path):
    """A random model never ends on its own, so the test names a token it does produce as end of sequence."""
    from tasks.runtimes import load
    from tasks.runtimes.base import chat_ids

    variant = tmp_path / "v"
    shutil.copytree(ggufs["q8_0"][0], variant)
    runtime = load(variant, "cpu", threads=2)
    ids = chat_ids(runtime.tokenizer, PROMPT)
    free = runtime.generate(ids, 8).token_ids
    runtime.close()
    k = max(i for i, t in enumerate(free) if t not in free[:i])  # the last step that makes a new token
    (variant / "generation_config.json").write_text(json.dumps({"eos_token_id": free[k]}))

    runtime = load(variant, "cpu", threads=2)
    try:
        stopped = runtime.generate(ids, 8, ignore_eos=False)
        assert stopped.token_ids == free[:k]
        forced = runtime.generate(ids, 8)
        assert forced.output_tokens == 8 and free[k] not in forced.token_ids and forced.token_ids[:k] == free[:k]
        sampled = [runtime.generate(ids, 8, temperature=1.0, seed=s).token_ids for s in (1, 1, 2)]
        assert sampled[0] == sampled[1] != sampled[2] and all(len(s) == 8 for s in sampled)
    finally:
        runtime.close()


def test_lora_then_gguf_composes(tiny_dir, build):
    out, meta = build(tiny_dir, [{"method": "lora", "r": 2, "steps": 1, "batch_size": 2, "max_length": 32},
                                 {"method": "gguf", "quant": "q8_0"}])
    assert [s["method"] for s in meta["chain"]] == ["lora", "gguf"] and meta["runtime"] == "llama.cpp"
    assert (out / "model-q8_0.gguf").is_file() and (out / "adapter" / "adapter_config.json").is_file()


def test_an_unknown_quant_is_rejected_naming_the_field():
    with pytest.raises(ValueError, match=r"v\.chain\[0\]\.quant: .*'q4_k_m'"):
        validate_step("gguf", {"quant": "q3_k_s"}, where="v.chain[0]")


def test_an_architecture_the_converter_does_not_know_fails_before_any_work(tiny_dir, tmp_path, build, monkeypatch):
    from tasks.compression import gguf

    monkeypatch.setattr(gguf, "apply", lambda *a: pytest.fail("apply ran"))
    odd = tmp_path / "odd"
    shutil.copytree(tiny_dir, odd)
    config = json.loads((odd / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps({**config, "architectures": ["FrobnicatorForCausalLM"]}))
    with pytest.raises(GreenlaneError, match=r"v\.chain\[0\]: gguf: architecture 'FrobnicatorForCausalLM'"):
        build(odd, [{"method": "gguf"}])


def test_a_missing_converter_says_how_to_install_it(tiny_dir, tmp_path, monkeypatch):
    from tasks.compression import gguf

    monkeypatch.setenv(gguf.CONVERTER_ENV, str(tmp_path))
    with pytest.raises(GreenlaneError, match=r"converter not found in .*make install"):
        gguf.check(tiny_dir, gguf.Config())


def test_the_converter_knows_llama_family_architectures():
    from tasks.compression import gguf

    known = gguf.converter_architectures(gguf.converter_dir())
    assert {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"} <= known


def test_nothing_may_follow_the_gguf_export():
    with pytest.raises(GreenlaneError, match=r"cast cannot follow the export step gguf"):
        check_chain(VariantSpec(name="v", chain=[{"method": "gguf"}, {"method": "cast"}]))
