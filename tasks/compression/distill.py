"""Knowledge distillation into a smaller student initialised from the teacher's own layers.

The student is the input model with its least influential decoder layers
removed (the same block-influence measure `prune` uses). It is trained on the
train split of the run's eval task and on the teacher's own chat answers about
train-split texts (general assistant text; KL term only) with

    loss = (1 - task_weight) * T^2 * KL(teacher_T || student_T)  +  task_weight * CE(answer)

where `_T` is softmax(logits / T) at every token, and CE is the cross-entropy
of the answer token. The T^2 factor keeps the KL gradients on the same scale
as the task loss whatever the temperature (Hinton et al., 2015).

With `layer_ratio: 0` the student keeps the input's shape, which is how a
pruned model is healed: in `prune -> distill` the teacher is the model
before pruning (see `teacher`). The loss curve is saved under `distill/`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.evaltasks import DEFAULT_TASK, EvalTask

ARTIFACTS = "distill"
USES_TASK = True  # apply() takes `task`, the run's eval task: its train split and chat instructions are the data


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    layer_ratio: float = Field(0.2, ge=0, lt=1)
    """Fraction of the input's decoder layers removed to make the student; 0 keeps its depth (healing)."""
    teacher: Literal["auto", "input"] = "auto"
    """`auto`: the unpruned model when an earlier `prune` step in the chain made the input, else the input.
    `input`: always the input model."""
    temperature: float = Field(2.0, gt=0)
    """Softmax temperature for both distributions in the KL term (> 1 exposes the teacher's runner-up tokens)."""
    task_weight: float = Field(0.5, ge=0, le=1)
    """Weight of the task loss (answer-token cross-entropy); the KL term gets 1 - task_weight."""
    steps: int = Field(60, ge=1)
    """Optimizer steps."""
    batch_size: int = Field(8, ge=1)
    """Examples per step."""
    lr: float = Field(1e-4, gt=0)
    """Peak AdamW learning rate (linear warm-up over the first 10% of steps, then linear decay)."""
    max_length: int = Field(96, ge=8)
    """Tokens per task example at most (a train-split review with its answer is ~30-50; chat rows are ~70-130)."""
    chat_samples: int = Field(64, ge=0)
    """Chat answers the teacher writes about train-split texts, added to the training data (KL term
    only), so the student learns the teacher's general assistant behaviour, not only the task (0: none)."""
    calibration_samples: int = Field(128, ge=1)
    """Train-split examples used (with the chat answers) to choose which layers the student keeps."""
    seed: int = 0
    """Seed for batch order."""


def check(in_dir: Path, cfg: Config) -> None:
    """Fail before any work when the model has too few layers for `layer_ratio`."""
    from tasks.compression.prune import check_layer_ratio

    check_layer_ratio(in_dir, cfg.layer_ratio, "distill.layer_ratio")


def apply(in_dir: Path, cfg: Config, out_dir: Path, task: str | EvalTask = DEFAULT_TASK) -> dict:
    import torch

    from tasks.compression import prune
    from tasks.compression._train import IGNORE, batches, calibration_batches, chat_rows, task_rows, train, write_loss_curve
    from tasks.models import load_model, save_model

    check(in_dir, cfg)
    teacher_dir, teacher_label = _teacher_dir(Path(in_dir), cfg.teacher)
    teacher, _ = load_model(teacher_dir)
    student, tokenizer = load_model(in_dir)
    chat = chat_rows(teacher, tokenizer, cfg.chat_samples, task=task) if cfg.chat_samples else []
    layers_before = student.config.num_hidden_layers
    dropped = []
    if cfg.layer_ratio:
        calib = calibration_batches(tokenizer, cfg.calibration_samples, chat, task=task)
        dropped = prune.least_influential(prune.layer_influence(student, calib), int(layers_before * cfg.layer_ratio))
        prune.drop_layers(student, dropped)

    # The embedding (tied to the LM head) is a fifth of SmolLM2; freezing it keeps the vocabulary
    # geometry the teacher's logits assume and saves its gradients and optimizer state.
    student.get_input_embeddings().weight.requires_grad_(False)
    student.train()
    temp = cfg.temperature

    def loss_fn(batch):
        mask = batch["attention_mask"].bool()
        with torch.no_grad():
            t_logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        s_logits = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        kl = torch.nn.functional.kl_div(
            torch.log_softmax(s_logits[mask] / temp, dim=-1),
            torch.log_softmax(t_logits[mask] / temp, dim=-1),
            log_target=True,
            reduction="batchmean",  # mean over tokens of sum over vocab: KL(teacher || student) per token
        ) * temp**2
        labels = batch["labels"][:, 1:].flatten()
        task = (  # a batch of chat rows only has no answer tokens
            torch.nn.functional.cross_entropy(s_logits[:, :-1].flatten(0, 1), labels, ignore_index=IGNORE)
            if (labels != IGNORE).any() else s_logits.new_zeros(())
        )
        loss = (1 - cfg.task_weight) * kl + cfg.task_weight * task
        return loss, {"kl": kl.detach(), "task": task.detach()}

    data = batches(task_rows(tokenizer, cfg.max_length, task) + chat, tokenizer, cfg.batch_size, cfg.seed)
    facts, history = train(student, loss_fn, data, cfg.steps, cfg.lr, desc="distill")
    student.eval()
    student.get_input_embeddings().weight.requires_grad_(True)
    save_model(student, tokenizer, out_dir)
    write_loss_curve(history, Path(out_dir) / ARTIFACTS, title=f"distill ({teacher_label} -> student)")
    return {
        "param_count": student.num_parameters(),
        "teacher": teacher_label,
        "num_hidden_layers": f"{layers_before}->{student.config.num_hidden_layers}",
        "dropped_layers": dropped,
        **facts,
    }


def _teacher_dir(in_dir: Path, teacher: str) -> tuple[Path, str]:
    from tasks.compression.prune import SOURCE_FILE
    from tasks.errors import GreenlaneError

    source = in_dir / SOURCE_FILE
    if teacher == "input" or not source.is_file():
        return in_dir, "input"
    unpruned = Path(json.loads(source.read_text())["unpruned_dir"])
    if not (unpruned / "config.json").is_file():
        raise GreenlaneError(
            f"distill.teacher=auto: the unpruned model recorded in {source} is gone ({unpruned}); "
            "run prune and distill in one chain, or set teacher: input"
        )
    return unpruned, "unpruned"
