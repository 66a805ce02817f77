"""Measurement, not a test: steps/s of `_train.train` (our loop) vs transformers' `Trainer` on the same work.

Same model, LoRA adapter, batches (the sentiment task's train rows, batch 8), AdamW, clipping at 1.0 and
warm-up/decay; only the loop differs, and the per-step losses printed should be equal. Each run is timed from the loop's (or the Trainer's) construction to
its last step: wall seconds, and the process's CPU seconds (`time.process_time`, which a busy shared machine
disturbs less than wall time; one compute thread, so idle OpenMP threads do not spin into it). Runs
alternate (loop, Trainer, loop, Trainer) so a drift in the machine's load hits both. Prints one line per run
and the medians.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/trainer_vs_loop.py [--model smol|tiny] [--steps 12]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LR = 2e-4


def setup(model_dir: Path, seed: int = 0):
    import torch
    from peft import LoraConfig, get_peft_model

    from tasks.compression._train import batches, task_rows
    from tasks.models import load_model

    torch.manual_seed(seed)
    model, tok = load_model(model_dir)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM",
                                                  target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                  "gate_proj", "up_proj", "down_proj"]))
    peft_model.train()
    return peft_model, batches(task_rows(tok, 96, "sentiment"), tok, 8, seed)


def run_loop(model_dir: Path, steps: int) -> tuple[float, float, list[float]]:
    """The hand-written loop `_train.train` was before it used the Trainer (kept here to compare against)."""
    import torch

    model, data = setup(model_dir)
    params = [p for p in model.parameters() if p.requires_grad]
    wall, cpu = time.perf_counter(), time.process_time()
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, (steps - s) / max(1, steps - warmup)))
    losses = []
    for _, batch in zip(range(steps), data):
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return time.perf_counter() - wall, time.process_time() - cpu, losses


def run_trainer(model_dir: Path, steps: int) -> tuple[float, float, list[float]]:
    """`_train.train` as shipped: transformers' Trainer."""
    from tasks.compression._train import train

    model, data = setup(model_dir)
    wall, cpu = time.perf_counter(), time.process_time()
    _, history = train(model, lambda b: (model(**b).loss, {}), data, steps, LR, desc="trainer")
    return time.perf_counter() - wall, time.process_time() - cpu, [h["loss"] for h in history]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["smol", "tiny"], default="smol")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    a = parser.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from tasks.models import make_tiny_model, resolve_base

    model_dir = resolve_base("bundled:SmolLM2-135M-Instruct", REPO / ".greenlane" / "cache")
    if a.model == "tiny":
        model_dir = make_tiny_model(Path(tempfile.mkdtemp()) / "tiny", tokenizer_dir=model_dir)
    runs = {"loop": [], "trainer": []}
    for r in range(a.rounds):
        for name, fn in (("loop", run_loop), ("trainer", run_trainer)):
            wall, cpu, losses = fn(model_dir, a.steps)
            runs[name].append((a.steps / wall, cpu / a.steps))
            print(f"round {r} {name}: {a.steps / wall:.3f} steps/s wall, {cpu / a.steps:.3f} CPU s/step; "
                  f"losses {' '.join(f'{x:.4f}' for x in losses)}", flush=True)
    for name, xs in runs.items():
        print(f"{a.model} {name}: median {statistics.median(x[0] for x in xs):.3f} steps/s wall, "
              f"{statistics.median(x[1] for x in xs):.3f} CPU s/step, {len(xs)} runs of {a.steps} steps, "
              f"{a.threads} thread(s)")


if __name__ == "__main__":
    main()
