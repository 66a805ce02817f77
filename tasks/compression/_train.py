"""What the training and calibrating methods share: their data, one training loop, the loss curve.

All data comes from the task's train split; the eval split and the held-out
perplexity text never reach a variant. Two kinds of rows:
- task rows: the example written exactly as the evaluation writes it,
  `format_example(text)` + " <label>", with the loss on the answer only;
- chat rows: the model's own answers, as a chat assistant, to instructions
  about train-split reviews (summarise, reply, weigh up). They are general
  assistant text, so distillation and calibration see more than the task's
  one-word answers; they carry no task labels.
"""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path
from typing import Callable, Iterator

from tasks.measurement.accuracy import format_example, load_split

IGNORE = -100  # label id that cross-entropy skips
CHAT_INSTRUCTIONS = (
    "Summarize this customer review in one sentence.",
    "Write a short, polite reply from the shop to this customer review.",
    "What did the customer like and dislike in this review?",
)

Row = tuple[list[int], list[int]]  # (input ids, labels)


def task_rows(tokenizer, max_length: int, task: str = "sentiment") -> list[Row]:
    """One row per train example; the labels score only the answer tokens."""
    rows = []
    for r in load_split(task, "train"):
        p = tokenizer(format_example(r["text"]))["input_ids"][: max_length - 1]
        a = tokenizer(f" {r['label']}", add_special_tokens=False)["input_ids"][: max_length - len(p)]
        rows.append((p + a, [IGNORE] * len(p) + a))
    return rows


def chat_rows(model, tokenizer, samples: int, max_new_tokens: int = 48, task: str = "sentiment") -> list[Row]:
    """`samples` chat transcripts: an instruction about a train review, and the model's greedy answer."""
    import torch

    texts = [r["text"] for r in load_split(task, "train")][-samples:]  # the task rows' few-shot examples come first
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"{CHAT_INSTRUCTIONS[i % len(CHAT_INSTRUCTIONS)]}\n\n{text}"}],
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
                        task: str = "sentiment") -> list:
    """Task examples joined into one token stream cut into [1, seq_len] chunks, plus each chat row (no padding)."""
    import torch

    text = "\n\n".join(format_example(r["text"]) + f" {r['label']}" for r in load_split(task, "train")[:samples])
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
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def train(
    params: list,
    loss_fn: Callable[[dict], tuple],
    batches: Iterator[dict],
    steps: int,
    lr: float,
    desc: str,
) -> tuple[dict, list[dict]]:
    """AdamW with linear warm-up and decay; `loss_fn(batch) -> (loss, {part: value})`.

    Shows a progress bar; returns summary facts for the variant metadata and
    the per-step history (for `write_loss_curve`).
    """
    import torch
    from tqdm.auto import tqdm

    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, (steps - s) / max(1, steps - warmup)))
    history = []
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc=desc, unit="step")
    for step, batch in zip(bar, batches):
        loss, parts = loss_fn(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        history.append({"step": step + 1, "loss": loss.item(), **{k: float(v) for k, v in parts.items()},
                        "lr": sched.get_last_lr()[0], "elapsed_s": time.perf_counter() - t0})
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}")
    bar.close()
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
