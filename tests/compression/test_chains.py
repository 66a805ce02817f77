"""Composition: every preset validates, chains carry artifacts down, and quantization goes last."""

import pytest

from tasks.compression import PRESETS, QUANTIZED_OUTPUT, METHODS, validate_step
from tasks.errors import GreenlaneError


def test_every_preset_names_registered_methods_with_valid_parameters():
    for name, chain in PRESETS.items():
        for i, step in enumerate(chain):
            params = {k: v for k, v in step.items() if k != "method"}
            validate_step(step["method"], params, where=f"{name}.chain[{i}]")
    assert QUANTIZED_OUTPUT <= METHODS.keys()


def test_method_configs_document_every_field():
    from tasks.compression import method_module

    for name in METHODS:
        for field, info in method_module(name).Config.model_fields.items():
            assert info.description, f"{name}.{field} has no docstring"


def test_prune_heal_nf4_composes_and_keeps_every_steps_artifacts(tiny_dir, build, stored_dtype):
    from tasks.models import load_model

    chain = [{"method": "prune", "ratio": 0.25},
             {"method": "distill", "layer_ratio": 0, "steps": 2, "batch_size": 4, "chat_samples": 4},
             {"method": "bnb", "bits": 4, "quant_type": "nf4"}]
    out, meta = build(tiny_dir, chain)
    assert [s["method"] for s in meta["chain"]] == ["prune", "distill", "bnb"]
    assert meta["chain_str"].startswith("prune(ratio=0.25") and " -> distill(" in meta["chain_str"]
    assert stored_dtype(out, "model.layers.0.mlp.down_proj.weight") == "U8"
    assert (out / "distill" / "loss_curve.csv").is_file() and (out / "prune" / "source.json").is_file()
    assert load_model(out)[0].config.intermediate_size == 96


def test_lora_then_int8_keeps_the_adapter(tiny_dir, build, stored_dtype):
    out, meta = build(tiny_dir, [{"method": "lora", "steps": 1, "batch_size": 2}, {"method": "bnb", "bits": 8}])
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert stored_dtype(out, "model.layers.0.mlp.down_proj.weight") == "I8"


@pytest.mark.parametrize("first", sorted(QUANTIZED_OUTPUT))
def test_a_step_after_a_quantizing_step_fails_before_any_work(tiny_dir, build, first):
    with pytest.raises(GreenlaneError, match=rf"variants\[v\]\.chain\[1\]: lora cannot follow {first}.*base_bits: 4"):
        build(tiny_dir, [{"method": first}, {"method": "lora"}])
