"""Structured pruning: remove MLP channels, and optionally whole decoder layers, by measured importance.

The weights are sliced, not zeroed: the saved model has a smaller
`intermediate_size` (and `num_hidden_layers`), so it reloads with a plain
`from_pretrained` and is genuinely smaller and faster on any hardware.

Importance comes from activations on calibration data (the eval task's train
split: `apply` receives the task the run is judged on), because on SmolLM2 weight magnitude alone picks the wrong channels
and destroys the model:
- MLP channel j of a layer: ||x_j||_2 * ||W_down[:, j]||_2, where x is the
  input of `down_proj` over the calibration tokens (what the channel carries
  times how much of it reaches the residual stream). Every layer keeps the
  same number of channels, because the config has one `intermediate_size`.
- Decoder layer: 1 - cos(hidden in, hidden out), averaged over tokens (how
  much the layer changes the residual stream; ShortGPT's block influence).
  The first and last layers are always kept.

Pruning without training costs quality; a following `distill` step (teacher:
the unpruned model) heals much of it: `prune -> distill`.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tasks.evaltasks import DEFAULT_TASK, EvalTask

USES_TASK = True  # apply() takes `task`, the run's eval task (its train split is the calibration data)
CHANNEL_MULTIPLE = 32  # kept MLP width is rounded to this, for matmul-friendly shapes and 4-bit blocks
SOURCE_FILE = Path("prune") / "source.json"  # where a later distill step finds the unpruned teacher


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    ratio: float = Field(0.25, gt=0, lt=1)
    """Fraction of MLP channels removed from every decoder layer, in (0, 1)."""
    layer_ratio: float = Field(0.0, ge=0, lt=1)
    """Fraction of decoder layers removed as well (0 keeps every layer), in [0, 1)."""
    calibration_samples: int = Field(128, ge=1)
    """Train-split examples run through the model to measure importance."""


def check(in_dir: Path, cfg: Config) -> None:
    """Fail before any work when the model has too few layers for `layer_ratio`."""
    check_layer_ratio(in_dir, cfg.layer_ratio, "prune.layer_ratio")


def check_layer_ratio(model_dir: Path, layer_ratio: float, field: str) -> None:
    from tasks.errors import GreenlaneError

    n = json.loads((Path(model_dir) / "config.json").read_text())["num_hidden_layers"]
    if int(n * layer_ratio) > n - 2:
        raise GreenlaneError(
            f"{field}={layer_ratio} would drop {int(n * layer_ratio)} of {n} layers, "
            f"but the first and last are always kept (at most {max(0, n - 2)} can go)"
        )


def apply(in_dir: Path, cfg: Config, out_dir: Path, task: str | EvalTask = DEFAULT_TASK) -> dict:
    from tasks.compression._train import calibration_batches
    from tasks.models import load_model, save_model

    check(in_dir, cfg)
    model, tokenizer = load_model(in_dir)
    calib = calibration_batches(tokenizer, cfg.calibration_samples, task=task)
    layers_before = model.config.num_hidden_layers
    dropped = []
    if cfg.layer_ratio:
        influence = layer_influence(model, calib)
        dropped = least_influential(influence, int(layers_before * cfg.layer_ratio))
        drop_layers(model, dropped)
    width_before = model.config.intermediate_size
    keep = max(CHANNEL_MULTIPLE, round(width_before * (1 - cfg.ratio) / CHANNEL_MULTIPLE) * CHANNEL_MULTIPLE)
    keep = min(keep, width_before)
    prune_mlp_channels(model, channel_importance(model, calib), keep)
    save_model(model, tokenizer, out_dir)
    _record_source(in_dir, out_dir)
    return {
        "param_count": model.num_parameters(),
        "intermediate_size": f"{width_before}->{keep}",
        "num_hidden_layers": f"{layers_before}->{model.config.num_hidden_layers}",
        "dropped_layers": dropped,
    }


def channel_importance(model, calib: list) -> list:
    """Per decoder layer, a tensor [intermediate_size] of channel importance."""
    import torch

    sq_sums, hooks = [], []
    for layer in model.model.layers:
        acc = torch.zeros(layer.mlp.down_proj.in_features)
        sq_sums.append(acc)

        def hook(_module, args, acc=acc):
            acc += args[0].detach().float().pow(2).sum(dim=(0, 1))

        hooks.append(layer.mlp.down_proj.register_forward_pre_hook(hook))
    try:
        with torch.inference_mode():
            for ids in calib:
                model(input_ids=ids)
    finally:
        for h in hooks:
            h.remove()
    return [
        acc.sqrt() * layer.mlp.down_proj.weight.detach().float().norm(dim=0)
        for acc, layer in zip(sq_sums, model.model.layers)
    ]


def prune_mlp_channels(model, importance: list, keep: int) -> None:
    """Keep the `keep` most important channels of every MLP, slicing gate/up rows and down columns."""
    import torch

    for layer, score in zip(model.model.layers, importance):
        idx = torch.topk(score, keep).indices.sort().values
        mlp = layer.mlp
        mlp.gate_proj = _sliced(mlp.gate_proj, idx, dim=0)
        mlp.up_proj = _sliced(mlp.up_proj, idx, dim=0)
        mlp.down_proj = _sliced(mlp.down_proj, idx, dim=1)
        if hasattr(mlp, "intermediate_size"):
            mlp.intermediate_size = keep
    model.config.intermediate_size = keep


def _sliced(linear, idx, dim: int):
    import torch

    weight = linear.weight.detach().index_select(dim, idx)
    out = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=linear.bias is not None, dtype=weight.dtype)
    with torch.no_grad():
        out.weight.copy_(weight)
        if linear.bias is not None:
            # down_proj's bias is added after the sum over channels, so only gate/up biases are sliced.
            out.bias.copy_(linear.bias[idx] if dim == 0 else linear.bias)
    return out


def layer_influence(model, calib: list) -> list[float]:
    """Per decoder layer, 1 - mean cosine similarity between its input and output hidden states."""
    import torch

    n = model.config.num_hidden_layers
    totals, count = [0.0] * n, 0
    with torch.inference_mode():
        for ids in calib:
            hs = model(input_ids=ids, output_hidden_states=True).hidden_states
            # hidden_states[n] has the final norm applied, so the last layer's figure is not comparable;
            # least_influential never drops it anyway.
            for i in range(n):
                cos = torch.nn.functional.cosine_similarity(hs[i][0].float(), hs[i + 1][0].float(), dim=-1)
                totals[i] += float((1 - cos).sum())
            count += ids.shape[1]
    return [t / count for t in totals]


def least_influential(influence: list[float], n_drop: int) -> list[int]:
    """The `n_drop` layers that change the hidden state least, never the first or the last."""
    candidates = sorted(range(1, len(influence) - 1), key=lambda i: influence[i])
    return sorted(candidates[:n_drop])


def drop_layers(model, drop: list[int]) -> None:
    """Remove decoder layers in place and renumber the rest (the KV cache is indexed by layer)."""
    import torch

    keep = [i for i in range(model.config.num_hidden_layers) if i not in set(drop)]
    model.model.layers = torch.nn.ModuleList(model.model.layers[i] for i in keep)
    for new_idx, layer in enumerate(model.model.layers):
        layer.self_attn.layer_idx = new_idx
    if isinstance(getattr(model.config, "layer_types", None), list):
        model.config.layer_types = [model.config.layer_types[i] for i in keep]
    model.config.num_hidden_layers = len(keep)


def _record_source(in_dir: Path, out_dir: Path) -> None:
    """Remember the unpruned model (the first one in a run of prune steps) for a later distill step."""
    previous = Path(in_dir) / SOURCE_FILE
    source = json.loads(previous.read_text())["unpruned_dir"] if previous.is_file() else str(Path(in_dir).resolve())
    (Path(out_dir) / SOURCE_FILE).parent.mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / SOURCE_FILE).write_text(json.dumps({"unpruned_dir": source}, indent=2))
