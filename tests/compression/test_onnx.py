"""The onnx export step: onnxruntime-genai's model builder, fp32 and int4 variants served by onnxruntime-genai."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tasks import runtimes
from tasks.compression import validate_step
from tasks.config import VariantSpec
from tasks.errors import GreenlaneError
from tasks.runtimes.base import chat_ids
from tasks.variants import build_variant

PROMPT = "Name three colours."
# Measured on the tiny model: ORT GenAI fp32 logits differ from transformers' by at most 3.6e-7 (logits of
# magnitude ~1.3), with and without a kept prefix; the tolerance leaves room for other CPUs' kernels.
FP32_LOGITS_ATOL = 1e-4


@pytest.fixture(scope="module")
def variants(tiny_dir, tmp_path_factory):
    """`variants(precision)` -> (variant_dir, metadata) of the tiny model exported at that precision, built once."""
    built: dict[str, tuple[Path, dict]] = {}
    chains = {"fp32": [{"method": "onnx", "precision": "fp32"}],
              "int4": [{"method": "onnx", "precision": "int4", "accuracy_level": 4}]}

    def _get(precision: str) -> tuple[Path, dict]:
        if precision not in built:
            out = tmp_path_factory.mktemp("onnx") / precision
            meta = build_variant(tiny_dir, VariantSpec(name=f"onnx-{precision}", chain=chains[precision]), out,
                                 base_model=str(tiny_dir))
            built[precision] = (out, meta)
        return built[precision]

    return _get


@pytest.fixture(scope="module")
def transformers_rt(tiny_dir):
    rt = runtimes.load(tiny_dir, "cpu", threads=2)
    yield rt
    rt.close()


def test_export_records_its_runtime_and_int4_is_smaller(variants, tiny_dir):
    from tasks.models import param_count

    (fp32_dir, fp32), (int4_dir, int4) = variants("fp32"), variants("int4")
    for out, meta in ((fp32_dir, fp32), (int4_dir, int4)):
        assert meta["runtime"] == "onnxruntime-genai" == runtimes.runtime_of(out)
        assert {"model.onnx", "model.onnx.data", "genai_config.json", "tokenizer.json", "config.json"} <= \
               {p.name for p in out.iterdir()}
        step = meta["chain"][0]
        assert step["param_count"] == meta["param_count"] == param_count(tiny_dir)
        assert step["builder"].startswith("onnxruntime-genai 0.18")
    assert fp32["chain"][0]["precision"] == "fp32" and fp32["chain"][0]["accuracy_level"] is None
    assert int4["chain"][0]["precision"] == "int4" and int4["chain"][0]["accuracy_level"] == 4
    # int4 in blocks of 32 with fp32 scales, the tied embedding shared with the LM head: 2.1 MB vs 13.0 MB
    assert int4["size_mb"] < 0.25 * fp32["size_mb"]


@pytest.mark.parametrize("precision", ["fp32", "int4"])
def test_variant_generates_exactly_n_tokens_with_ignore_eos(variants, precision):
    rt = runtimes.load(variants(precision)[0], "cpu", threads=2)
    try:
        assert rt.name == "onnxruntime-genai"
        ids = chat_ids(rt.tokenizer, PROMPT)
        first, second = rt.generate(ids, 16), rt.generate(ids, 16)
        assert first.output_tokens == 16 and first.token_ids == second.token_ids
        assert 0 < first.ttft_s <= first.total_s
        assert rt.generate_batch([ids, ids[:7]], 4) == 8
        assert rt.memory_footprint_mb() > 0
    finally:
        rt.close()


def test_ignore_eos_generates_past_the_end_of_sequence(variants, transformers_rt, tmp_path):
    """The random tiny model never picks its real end of sequence, so the variant's end of sequence is set to
    the token greedy decoding picks first: without ignore_eos generation stops at once, with it (ORT GenAI's
    min_length) it never picks that token and runs to max_new_tokens."""
    ids = chat_ids(transformers_rt.tokenizer, PROMPT)
    first = transformers_rt.generate(ids, 1).token_ids[0]
    out = tmp_path / "eos-variant"
    shutil.copytree(variants("fp32")[0], out)
    genai = json.loads((out / "genai_config.json").read_text())
    genai["model"]["eos_token_id"] = first
    (out / "genai_config.json").write_text(json.dumps(genai))
    rt = runtimes.load(out, "cpu", threads=2)
    try:
        assert rt.generate(ids, 8, ignore_eos=False).token_ids == []
        forced = rt.generate(ids, 8, ignore_eos=True)
        assert forced.output_tokens == 8 and first not in forced.token_ids
    finally:
        rt.close()


def test_fp32_logits_agree_with_transformers(variants, transformers_rt):
    rt = runtimes.load(variants("fp32")[0], "cpu", threads=2)
    try:
        ids = chat_ids(rt.tokenizer, PROMPT)
        ours = rt.logits(ids)
        assert ours.shape == (len(ids), len(rt.tokenizer)) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, transformers_rt.logits(ids), atol=FP32_LOGITS_ATOL)
        prefix, rest = ids[:12], ids[12:]
        with_prefix = rt.logits(rest, prefix=prefix)
        np.testing.assert_allclose(with_prefix, transformers_rt.logits(rest, prefix=prefix), atol=FP32_LOGITS_ATOL)
        # the second call reuses the kept prefix state (rewound to its end), unchanged by the first
        np.testing.assert_array_equal(rt.logits(rest, prefix=prefix), with_prefix)
        np.testing.assert_allclose(rt.logits(rest[:3], prefix=prefix), with_prefix[:3], atol=FP32_LOGITS_ATOL)
        assert rt.generate(ids, 12).token_ids == transformers_rt.generate(ids, 12).token_ids
    finally:
        rt.close()


def test_int4_logits_stay_close_to_fp32(variants):
    fp32, int4 = (runtimes.load(variants(p)[0], "cpu", threads=2) for p in ("fp32", "int4"))
    try:
        ids = chat_ids(fp32.tokenizer, PROMPT)
        a, b = fp32.logits(ids), int4.logits(ids)
        assert np.isfinite(b).all()
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.97  # measured 0.988 (int4, blocks of 32)
    finally:
        fp32.close()
        int4.close()


def test_bad_parameters_are_rejected_naming_the_field():
    with pytest.raises(ValueError, match=r"v\.chain\[0\]\.precision: .*'fp32', 'int8' or 'int4'"):
        validate_step("onnx", {"precision": "int3"}, where="v.chain[0]")
    with pytest.raises(ValueError, match=r"v\.chain\[0\]\.accuracy_level: .*int8 or int4 only"):
        validate_step("onnx", {"precision": "fp32", "accuracy_level": 4}, where="v.chain[0]")
    with pytest.raises(ValueError, match=r"v\.chain\[0\]\.execution_provider"):
        validate_step("onnx", {"execution_provider": "tpu"}, where="v.chain[0]")


def test_unsupported_architecture_is_named_before_any_work(tiny_dir, tmp_path):
    from tasks.compression.onnx import builder_architectures

    assert {"LlamaForCausalLM", "Qwen2ForCausalLM", "Phi3ForCausalLM"} <= builder_architectures()
    model = tmp_path / "fancy"
    model.mkdir()
    config = json.loads((tiny_dir / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "architectures": ["FancyNewForCausalLM"]}))
    with pytest.raises(GreenlaneError, match=r"v\.chain\[0\]: onnx: architecture 'FancyNewForCausalLM'.*"
                                             r"LlamaForCausalLM"):
        build_variant(model, VariantSpec(name="v", chain=[{"method": "onnx"}]), tmp_path / "v", base_model="x")


def test_blocks_that_do_not_divide_the_rows_are_refused(tiny_dir, tmp_path):
    with pytest.raises(GreenlaneError, match=r"block_size 128 does not divide the model's hidden_size \(64\)"):
        build_variant(tiny_dir, VariantSpec(name="v", chain=[{"method": "onnx", "block_size": 128}]), tmp_path / "v",
                      base_model="x")


def test_nothing_may_follow_the_export(tiny_dir, tmp_path):
    with pytest.raises(GreenlaneError, match="cast cannot follow the export step onnx"):
        build_variant(tiny_dir, VariantSpec(name="v", chain=[{"method": "onnx"}, {"method": "cast"}]), tmp_path / "v",
                      base_model="x")
