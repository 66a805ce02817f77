"""greenlane_retrain's own steps: record what triggered it, LoRA-tune the base model on the task data.

The tuned model (adapter merged into the weights) becomes the run's base: the
variants are built from it and the rest is greenlane_optimize's path
(benchmark per target, gates against the tuned baseline, promote). The CI's
`data_version` and `git_sha` (from the trigger's conf, or from the extra of the
asset event that triggered the run) are params and tags of the MLflow parent run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tasks.errors import GreenlaneError
from tasks.models import TUNING_RECORD

log = logging.getLogger("greenlane")

TRIGGER_KEYS = ("data_version", "git_sha")

TUNING = TUNING_RECORD  # the tuning's record (method, parameters, loss) in the tuned model's directory


def prepare_retrain(params: dict, dag_run_id: str, asset_extras: list[dict] | None = None) -> dict:
    """Validate params (config and LoRA settings), run `pipeline.prepare`, record the trigger on the parent run."""
    from tasks.compression import validate_step
    from tasks.config import params_config_file
    from tasks.pipeline import prepare
    from tasks.tracking import runs

    lora = dict(params.get("lora") or {})
    try:
        validate_step("lora", lora, where="params.lora")
    except ValueError as err:
        raise GreenlaneError(str(err)) from None
    from_asset: dict = {}
    for extra in asset_extras or []:
        from_asset.update({k: extra[k] for k in TRIGGER_KEYS if extra.get(k)})
    trigger = {k: params.get(k) or from_asset.get(k) or "unknown" for k in TRIGGER_KEYS}
    ctx = prepare(params_config_file(params, dag_run_id), None, dag_run_id)
    runs.log_record(
        ctx["tracking_uri"], ctx["parent_run_id"], metrics={},
        params={**trigger, **{f"lora.{k}": v for k, v in lora.items()}},
        tags={**trigger, "greenlane.dag": "greenlane_retrain", "triggered_by": "asset" if asset_extras else "conf"},
    )
    runs.rename_run(ctx["tracking_uri"], ctx["parent_run_id"], f"retrain {dag_run_id}")
    log.info("retrain %s: data_version=%s git_sha=%s", dag_run_id, trigger["data_version"], trigger["git_sha"])
    return {**ctx, **trigger, "lora": lora}


def tune(ctx: dict) -> dict:
    """LoRA-tune the base on the task's train split; the returned ctx has the tuned model as its base."""
    from tasks.config import VariantSpec, load_ctx_config
    from tasks.tracking import runs
    from tasks.variants import METADATA, build_variant

    cfg = load_ctx_config(ctx)
    out = Path(ctx["run_dir"]) / "tuned"
    spec = VariantSpec(name="lora-tuned", chain=[{"method": "lora", **ctx["lora"]}])
    log.info("LoRA-tuning %s on the %s train split", cfg.base_model, cfg.eval.task)
    meta = build_variant(Path(ctx["base_dir"]), spec, out, base_model=cfg.base_model, task=cfg.eval.task)
    # The tuned model is a base, not a variant: the baseline variant is hard-linked from it and writes its own
    # metadata file, which must not be this one (a write through the link would rewrite both).
    (out / METADATA).replace(out / TUNING)
    step = meta["chain"][0]
    facts = {f"lora_{k}": v for k, v in step.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    uri, parent = ctx["tracking_uri"], ctx["parent_run_id"]
    runs.log_record(uri, parent, metrics=facts, params={}, tags={"tuned_from": cfg.base_model})
    if (out / "adapter").is_dir():
        runs.log_dir(uri, parent, out / "adapter", "lora-adapter")  # adapter weights and the loss curve
    log.info("tuned: loss %.3f -> %.3f in %d steps", step.get("train_loss_start", float("nan")),
             step.get("train_loss_end", float("nan")), step.get("train_steps", 0))
    return {**ctx, "base_dir": str(out), "pretrained_dir": ctx["base_dir"]}
