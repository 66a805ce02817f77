"""LoRA / QLoRA: tuned on the train split, merged into a servable model, adapter kept under adapter/."""

import sys

import pytest

from tasks.errors import GreenlaneError

FAST = {"steps": 2, "batch_size": 4, "lr": 1e-2}


def test_lora_merges_into_a_plain_model_and_keeps_the_adapter(tiny_dir, build, logits):
    import torch
    from peft import PeftModel

    from tasks.models import load_model

    out, meta = build(tiny_dir, [{"method": "lora", "r": 4, **FAST}])
    step = meta["chain"][0]
    assert step["train_steps"] == 2 and 0 < step["trainable_params"] < meta["param_count"] / 10
    assert meta["param_count"] == load_model(tiny_dir)[0].num_parameters()  # merged: no extra weights
    assert {"adapter_config.json", "adapter_model.safetensors", "loss_curve.csv", "loss_curve.png"} <= {
        p.name for p in (out / "adapter").iterdir()
    }
    merged = logits(out)
    assert not torch.allclose(merged, logits(tiny_dir))  # training changed something
    base, tok = load_model(tiny_dir)
    with torch.inference_mode():
        adapted = PeftModel.from_pretrained(base, out / "adapter")(
            input_ids=tok("The weather today is", return_tensors="pt")["input_ids"]
        ).logits
    assert torch.allclose(adapted, merged, atol=1e-4)  # the adapter artifact is what was merged


def test_qlora_trains_on_a_4bit_base_and_merges_into_its_dequantized_weights(tiny_dir, build, stored_dtype):
    import bitsandbytes as bnb
    import torch

    from tasks.models import load_model

    out, meta = build(tiny_dir, [{"method": "lora", "base_bits": 4, **FAST}])
    assert meta["chain"][0]["merged_into"] == "fp32 dequantized 4-bit base"
    assert stored_dtype(out, "model.layers.0.mlp.down_proj.weight") == "F32"
    # The merged weight is the nf4-rounded base plus the LoRA delta, not the original base plus delta.
    base_w = load_model(tiny_dir)[0].model.layers[0].mlp.down_proj.weight.detach()
    packed, state = bnb.functional.quantize_4bit(base_w, quant_type="nf4")
    rounded = bnb.functional.dequantize_4bit(packed, state)
    merged_w = load_model(out)[0].model.layers[0].mlp.down_proj.weight.detach()
    assert (merged_w - rounded).abs().mean() < (merged_w - base_w).abs().mean()
    assert torch.isfinite(merged_w).all()


def test_unknown_lora_target_module_fails_before_any_work(tiny_dir, build, monkeypatch):
    from tasks.compression import lora

    monkeypatch.setattr(lora, "apply", lambda *a: pytest.fail("apply ran"))
    with pytest.raises(GreenlaneError, match=r"v\.chain\[0\]: lora\.target_modules: 'qkv_proj' not in the model.*q_proj"):
        build(tiny_dir, [{"method": "lora", "target_modules": ["q_proj", "qkv_proj"]}])


def test_qlora_where_bitsandbytes_cannot_run_fails_before_any_work(tiny_dir, build, monkeypatch):
    from tasks.compression import lora

    monkeypatch.setattr(lora, "apply", lambda *a: pytest.fail("apply ran"))
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails, as on a machine without it
    monkeypatch.setitem(sys.modules, "bitsandbytes.functional", None)
    with pytest.raises(GreenlaneError, match=r"base_bits=4 \(QLoRA\) needs bitsandbytes 4-bit.*base_bits: null"):
        build(tiny_dir, [{"method": "lora", "base_bits": 4}])


@pytest.mark.slow
def test_lora_and_qlora_on_smollm2_run_end_to_end(smol_dir, build):
    from tasks.models import load_model

    for name, extra in (("lora", {}), ("qlora", {"base_bits": 4})):
        out, meta = build(smol_dir, [{"method": "lora", "steps": 2, "batch_size": 2, **extra}], name=name)
        assert meta["param_count"] == 134_515_008 and (out / "adapter" / "adapter_model.safetensors").is_file()
        assert load_model(out)[0].config.num_hidden_layers == 30
