"""LoRA (and QLoRA) tuning with peft on the task's train split, merged into a servable variant.

The adapter is trained on `task.prompt(row) + " <answer>"` with the loss
on the answer tokens only: the exact prompt the evaluation scores, drawn from
the train split of the run's eval task (the eval split never leaks in). After training the adapter
is saved under `adapter/` (loadable with `PeftModel.from_pretrained` on the
input model) together with its loss curve, and merged (`merge_and_unload`)
into plain weights, so the variant loads like any model and costs nothing
extra per token.

QLoRA (`base_bits: 4`): the frozen base is loaded in 4-bit by bitsandbytes and
the adapter is trained on top of it. Merging into the 4-bit weights would
re-round the small LoRA update away, so instead each 4-bit weight is
dequantized to fp32 and the adapter is merged into that: the variant is an
fp32 model computing exactly what was trained. Chain a `bnb` step after it
(preset `qlora-nf4`) for a 4-bit servable model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.evaltasks import DEFAULT_TASK, EvalTask

ARTIFACTS = "adapter"
USES_TASK = True  # apply() takes `task`, the run's eval task, and trains on its train split
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    r: int = Field(8, ge=1)
    """LoRA rank."""
    alpha: float = Field(16, gt=0)
    """LoRA scaling numerator: the update is (alpha / r) * B @ A."""
    dropout: float = Field(0.05, ge=0, lt=1)
    """Dropout on the LoRA input during training."""
    target_modules: list[str] = Field(default_factory=lambda: list(ALL_LINEAR), min_length=1)
    """Names of the linear modules that get an adapter (checked against the model before any work)."""
    steps: int = Field(60, ge=1)
    """Optimizer steps (about 2.7 s each for SmolLM2-135M on a 2-core CPU at the default batch: 30 took 81 s in
    the demo run of 2026-11-30 03:16 UTC)."""
    batch_size: int = Field(8, ge=1)
    """Examples per step."""
    lr: float = Field(2e-4, gt=0)
    """Peak AdamW learning rate (linear warm-up over the first 10% of steps, then linear decay)."""
    max_length: int = Field(96, ge=8)
    """Tokens per example at most (a train-split review with its answer is ~30-50)."""
    base_bits: Literal[4] | None = None
    """4 for QLoRA (frozen base in bitsandbytes 4-bit); null for LoRA on the input's own weights."""
    quant_type: Literal["nf4", "fp4"] = "nf4"
    """QLoRA only: the 4-bit data type of the base."""
    seed: int = 0
    """Seed for adapter initialisation and batch order."""

    @model_validator(mode="after")
    def _quant_type_needs_4bit(self) -> "Config":
        if self.base_bits is None and self.quant_type != "nf4":
            raise ValueError("quant_type applies to the QLoRA base only (set base_bits: 4)")
        return self


def check(in_dir: Path, cfg: Config) -> None:
    """Fail before any work: unknown target modules, or a 4-bit base where bitsandbytes cannot run."""
    from tasks.errors import GreenlaneError

    names = linear_module_names(Path(in_dir))
    missing = [t for t in cfg.target_modules if t not in names]
    if missing:
        raise GreenlaneError(
            f"lora.target_modules: {', '.join(map(repr, missing))} not in the model; "
            f"its linear modules are: {', '.join(sorted(names))}"
        )
    if cfg.base_bits == 4:
        check_4bit_runtime()


def linear_module_names(model_dir: Path) -> set[str]:
    """Short names of the model's linear layers, from its config alone (built on the meta device: no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    return {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


def check_4bit_runtime() -> None:
    """Quantize and dequantize a small tensor: an import alone does not prove the 4-bit kernels run here."""
    from tasks.errors import GreenlaneError

    try:
        import bitsandbytes.functional as bnbf
        import torch

        packed, state = bnbf.quantize_4bit(torch.randn(64, 64), quant_type="nf4")
        bnbf.dequantize_4bit(packed, state)
    except Exception as err:  # ImportError, a missing native library, or no kernel for this device
        raise GreenlaneError(
            f"lora.base_bits=4 (QLoRA) needs bitsandbytes 4-bit, which cannot run on this machine "
            f"({type(err).__name__}: {err}); use base_bits: null for plain LoRA"
        ) from None


def apply(in_dir: Path, cfg: Config, out_dir: Path, task: str | EvalTask = DEFAULT_TASK) -> dict:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    from tasks.compression._train import batches, task_rows, train, write_loss_curve
    from tasks.models import load_model, save_model

    check(in_dir, cfg)
    torch.manual_seed(cfg.seed)
    model, tokenizer = load_model(in_dir, **_base_kwargs(cfg))
    lora = LoraConfig(
        r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=cfg.target_modules, task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    peft_model.train()
    data = batches(task_rows(tokenizer, cfg.max_length, task), tokenizer, cfg.batch_size, cfg.seed)
    facts, history = train(peft_model, lambda b: (peft_model(**b).loss, {}), data, cfg.steps, cfg.lr,
                           desc="qlora" if cfg.base_bits else "lora")
    peft_model.eval()

    out_dir = Path(out_dir)
    adapter_tmp = out_dir.with_name(f".{out_dir.name}.adapter")
    shutil.rmtree(adapter_tmp, ignore_errors=True)
    peft_model.save_pretrained(adapter_tmp)
    write_loss_curve(history, adapter_tmp, title="qlora" if cfg.base_bits else "lora")
    if cfg.base_bits == 4:
        base, _ = load_model(in_dir)
        _load_dequantized(base, peft_model)
        merged = PeftModel.from_pretrained(base, adapter_tmp).merge_and_unload()
    else:
        merged = peft_model.merge_and_unload()
    save_model(merged, tokenizer, out_dir)
    adapter_tmp.rename(out_dir / ARTIFACTS)
    return {
        "param_count": merged.num_parameters(),
        "trainable_params": trainable,
        "merged_into": "fp32 dequantized 4-bit base" if cfg.base_bits else "input weights",
        **facts,
    }


def _base_kwargs(cfg: Config) -> dict:
    if cfg.base_bits != 4:
        return {}
    import torch
    from transformers import BitsAndBytesConfig

    # fp32 compute: bf16 matmuls are slower than fp32 on CPUs without AMX, and training wants the precision.
    return {"quantization_config": BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type=cfg.quant_type, bnb_4bit_compute_dtype=torch.float32
    )}


def _load_dequantized(base, peft_model) -> None:
    """Overwrite `base`'s weights with the dequantized 4-bit weights the adapter was trained on."""
    import bitsandbytes as bnb
    import torch

    with torch.no_grad():
        for name, module in peft_model.named_modules():
            if isinstance(module, bnb.nn.Linear4bit):
                weight = bnb.functional.dequantize_4bit(module.weight.data, module.weight.quant_state)
                target = name.removeprefix("base_model.model.").removesuffix(".base_layer")
                base.get_submodule(target).weight.copy_(weight.to(torch.float32))
