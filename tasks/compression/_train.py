"""What the training and calibrating methods share: their data, one training loop (transformers' Trainer),
the loss curve.

All data comes from the eval task's train split (`tasks.evaltasks`, the same task object the
accuracy figure reads); the eval split and the held-out perplexity text never reach a variant.
Two kinds of rows:
- task rows: the example written exactly as the evaluation writes it, `task.prompt(row)` + " "
  + its answer, with the loss on the answer only;
- chat rows: the model's own answers, as a chat assistant, to the task's `chat_instructions`
  about train-split texts (for sentiment: summarise, reply, weigh up a review). They are general
  assistant text, so distillation and calibration see more than the task's short answers; they
  carry no task labels.
"""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path
from typing import Callable, Iterator

from tasks.evaltasks import DEFAULT_TASK, EvalTask, get

IGNORE = -100  # label id that cross-entropy skips

Row = tuple[list[int], list[int]]  # (input ids, labels)


def task_rows(tokenizer, max_length: int, task: str | EvalTask = DEFAULT_TASK) -> list[Row]:
    """One row per train example; the labels score only the answer tokens."""
    task = get(task)
    rows = []
    for r in task.rows("train"):
        p = tokenizer(task.prompt(r))["input_ids"][: max_length - 1]
        a = tokenizer(f" {task.answer(r)}", add_special_tokens=False)["input_ids"][: max_length - len(p)]
        rows.append((p + a, [IGNORE] * len(p) + a))
    return rows


def chat_rows(model, tokenizer, samples: int, max_new_tokens: int = 48,
              task: str | EvalTask = DEFAULT_TASK) -> list[Row]:
    """`samples` chat transcripts: an instruction about a train-split text, and the model's greedy answer."""
    import torch

    task = get(task)
    instructions = task.spec.chat_instructions
    texts = [str(r[task.text_field]) for r in task.rows("train")][-samples:]  # few-shot rows come first
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"{instructions[i % len(instructions)]}\n\n{text}"}],
            add_generation_prompt=True, tokenize=True, return_dict=False,
        )
        for i, text in enumerate(texts)
    ]
    pad = _pad_id(tokenizer)
    stop = {pad, tokenizer.eos_token_id}
    rows = []
    for start in range(0, len(prompts), 16):
        chunk = prompts[start : start + 16]
        width = max(map(len, chunk))
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in chunk])  # left padding for generation
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=pad)
        for p, seq in zip(chunk, out[:, width:].tolist()):
            end = next((i for i, t in enumerate(seq) if t in stop), len(seq) - 1)
            answer = seq[: end + 1]  # up to and including the end of the turn
            rows.append((p + answer, [IGNORE] * (len(p) + len(answer))))
    return rows


def calibration_batches(tokenizer, samples: int, chat: list[Row] = (), seq_len: int = 128,
                        task: str | EvalTask = DEFAULT_TASK) -> list:
    """Task examples joined into one token stream cut into [1, seq_len] chunks, plus each chat row (no padding)."""
    import torch

    task = get(task)
    text = "\n\n".join(task.solved(r) for r in task.rows("train")[:samples])
    ids = tokenizer(text, return_tensors="pt")["input_ids"][0]
    chunks = [ids[i : i + seq_len].unsqueeze(0) for i in range(0, len(ids) - 1, seq_len)]
    return chunks + [torch.tensor([row_ids]) for row_ids, _ in chat]


def batches(rows: list[Row], tokenizer, batch_size: int, seed: int) -> Iterator[dict]:
    """Endless shuffled batches of input_ids, attention_mask and labels (right-padded).

    Rows of similar length are batched together (sorted within windows of 8 batches), so a short task
    row is not padded to a long chat row's length.
    """
    import torch

    rng = random.Random(seed)
    pad = _pad_id(tokenizer)
    window = batch_size * 8
    while True:
        order = rng.sample(range(len(rows)), len(rows))
        groups = []
        for w in range(0, len(order), window):
            by_len = sorted(order[w : w + window], key=lambda i: len(rows[i][0]))
            groups += [by_len[b : b + batch_size] for b in range(0, len(by_len) - batch_size + 1, batch_size)]
        rng.shuffle(groups)
        for group in groups:
            width = max(len(rows[i][0]) for i in group)
            yield {
                "input_ids": torch.tensor([rows[i][0] + [pad] * (width - len(rows[i][0])) for i in group]),
                "attention_mask": torch.tensor([[1] * len(rows[i][0]) + [0] * (width - len(rows[i][0])) for i in group]),
                "labels": torch.tensor([rows[i][1] + [IGNORE] * (width - len(rows[i][1])) for i in group]),
            }


def _pad_id(tokenizer) -> int:
    from tasks.runtimes.base import pad_id

    return pad_id(tokenizer)


def train(
    model,
    loss_fn: Callable[[dict], tuple],
    batches: Iterator[dict],
    steps: int,
    lr: float,
    desc: str,
) -> tuple[dict, list[dict]]:
    """transformers' `Trainer` over `model`'s trainable parameters; `loss_fn(batch) -> (loss, {part: value})`.

    AdamW with linear warm-up over the first 10% of steps then linear decay, gradients clipped at norm 1.0, on
    the CPU (where variants are built). Shows a progress bar; returns summary facts for the variant metadata
    and the per-step history (for `write_loss_curve`). It takes the same steps as the plain loop it replaced
    (equal losses; benchmarks/trainer_vs_loop.py measures both).
    """
    import tempfile

    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 10)
    # Our own schedule rather than the Trainer's "linear", whose first step runs at lr 0.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, (steps - s) / max(1, steps - warmup)))
    history: list[dict] = []
    step_loss: dict = {}
    t0 = time.perf_counter()

    class Loop(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, parts = loss_fn(inputs)
            step_loss.update(loss=loss.item(), **{k: float(v) for k, v in parts.items()})
            return loss

    class History(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 0:  # the Trainer reseeds and its data loader draws from the global generator:
                torch.set_rng_state(rng)  # the caller's seed keeps deciding dropout, as in a plain loop

        def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
            history.append({"step": state.global_step, **step_loss, "lr": lr_scheduler.get_last_lr()[0],
                            "elapsed_s": time.perf_counter() - t0})

    class Batches(torch.utils.data.IterableDataset):
        def __iter__(self):
            return batches

    rng = torch.get_rng_state()
    with tempfile.TemporaryDirectory(prefix="greenlane-train-") as out:
        args = TrainingArguments(
            output_dir=out, max_steps=steps, max_grad_norm=1.0, per_device_train_batch_size=1, use_cpu=True,
            logging_strategy="no", save_strategy="no", report_to="none", remove_unused_columns=False,
            dataloader_num_workers=0, run_name=desc,
        )
        # Batches arrive padded and grouped by length (`batches`); the loader passes each one through whole.
        trainer = Loop(model=model, args=args, train_dataset=Batches(), data_collator=lambda items: items[0],
                       optimizers=(opt, sched), callbacks=[History()])
        trainer.train()
    window = max(1, min(10, len(history) // 4))
    facts = {
        "train_steps": len(history),
        "train_s": time.perf_counter() - t0,
        "train_loss_start": sum(h["loss"] for h in history[:window]) / window,
        "train_loss_end": sum(h["loss"] for h in history[-window:]) / window,
    }
    return facts, history


def write_loss_curve(history: list[dict], out_dir: Path, title: str) -> None:
    """`loss_curve.csv` (every step) and `loss_curve.png` in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "loss_curve.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    import matplotlib

    matplotlib.use("Agg")  # no display in a worker
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [h["step"] for h in history]
    for key in [k for k in history[0] if k not in ("step", "lr", "elapsed_s")]:
        ax.plot(steps, [h[key] for h in history], label=key, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "loss_curve.png", dpi=100)
    plt.close(fig)
