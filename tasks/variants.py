"""Building a variant directory from the base model and a method chain.

A variant directory is self-contained: model weights (safetensors), config,
tokenizer, and `greenlane_variant.json` with the method chain, every
parameter, the parameter count and the size on disk. Building is idempotent:
the directory is written to a temporary place and moved over any previous one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.compression import QUANTIZED_OUTPUT, method_module, validate_step
from tasks.errors import GreenlaneError
from tasks.models import dir_size_mb, is_model_file, param_count, replace_dir
from tasks.runtimes import DEFAULT_RUNTIME

if TYPE_CHECKING:  # annotations only: tasks.config imports this module to check chains, so no runtime import back
    from tasks.config import VariantSpec

METADATA = "greenlane_variant.json"


def build_variant(base_dir: Path, spec: VariantSpec, out_dir: Path, base_model: str, task: str = "sentiment") -> dict:
    """Apply `spec.chain` to `base_dir`, write the variant to `out_dir`, return its metadata.

    `task` is the run's eval task (`eval.task`); a method that trains or calibrates (`USES_TASK`) gets it.
    """
    check_variant(base_dir, spec)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    t0 = time.perf_counter()
    try:
        current = Path(base_dir)
        steps = []
        for i, step in enumerate(spec.chain):
            cfg = validate_step(step.method, step.params, where=f"{spec.name}.chain[{i}]")
            step_out = work / f"step{i}-{step.method}"
            t_step = time.perf_counter()
            module = method_module(step.method)
            extra = {"task": task} if getattr(module, "USES_TASK", False) else {}
            facts = module.apply(current, cfg, step_out, **extra)
            if current != Path(base_dir):
                _carry_artifacts(current, step_out)
            steps.append({"method": step.method, "params": cfg.model_dump(), "wall_s": time.perf_counter() - t_step,
                          **({"task": task} if extra else {}), **facts})
            current = step_out
        final = work / "variant"
        if current == Path(base_dir):
            _link_model_files(current, final)  # baseline: the base weights, unchanged
        else:
            current.rename(final)
        meta = {
            "name": spec.name,
            "base_model": base_model,
            "chain": steps,
            "chain_str": " -> ".join(_step_label(s) for s in steps) or "none",
            "runtime": chain_runtime(spec),
            "param_count": steps[-1]["param_count"] if steps else param_count(final),
            "size_mb": dir_size_mb(final),
            "build_wall_s": time.perf_counter() - t0,
        }
        # The baseline's files are hard links into the base directory: unlink first, so writing the
        # metadata never writes through a link into the base model.
        (final / METADATA).unlink(missing_ok=True)
        (final / METADATA).write_text(json.dumps(meta, indent=2))
        replace_dir(final, out_dir)
        return meta
    finally:
        shutil.rmtree(work, ignore_errors=True)


def chain_runtime(spec: VariantSpec) -> str:
    """The runtime a variant is served with: the one its export step names (the last step), else transformers."""
    if spec.chain:
        return getattr(method_module(spec.chain[-1].method), "RUNTIME", DEFAULT_RUNTIME)
    return DEFAULT_RUNTIME


def check_chain(spec: VariantSpec) -> None:
    """The order rules of a chain, checkable at config load: nothing after a quantizing step (its weights are
    packed for its own kernels), and nothing after an export step (its output is another runtime's format)."""
    for i, step in enumerate(spec.chain[1:], start=1):
        where = f"variants[{spec.name}].chain[{i}]"
        previous = spec.chain[i - 1].method
        if previous in QUANTIZED_OUTPUT:
            raise GreenlaneError(
                f"{where}: {step.method} cannot follow {previous}, whose output is quantized; put quantization last "
                "(for LoRA on a 4-bit base, use lora with base_bits: 4)"
            )
        if hasattr(method_module(previous), "RUNTIME"):
            raise GreenlaneError(f"{where}: {step.method} cannot follow the export step {previous}; an export "
                                 "step ends a chain")


def check_variant(base_dir: Path, spec: VariantSpec) -> None:
    """Fail before any work on a chain that cannot run: the order rules (`check_chain`), then each method's
    `check(in_dir, cfg)` hook (run against the base model, e.g. LoRA target modules exist)."""
    check_chain(spec)
    for i, step in enumerate(spec.chain):
        where = f"{spec.name}.chain[{i}]"
        cfg = validate_step(step.method, step.params, where=where)
        check = getattr(method_module(step.method), "check", None)
        if check is not None:
            try:
                check(Path(base_dir), cfg)
            except GreenlaneError as err:
                raise GreenlaneError(f"{where}: {err}") from None


def read_metadata(variant_dir: Path) -> dict:
    return json.loads((Path(variant_dir) / METADATA).read_text())


def _step_label(step: dict) -> str:
    params = ",".join(f"{k}={v}" for k, v in step["params"].items())
    return f"{step['method']}({params})"



def _carry_artifacts(src: Path, dst: Path) -> None:
    """Subdirectories of a step's output are its artifacts (a LoRA adapter, a loss curve): keep them down the chain."""
    for sub in src.iterdir():
        if sub.is_dir() and not (dst / sub.name).exists():
            sub.rename(dst / sub.name)  # both are temporary step directories on one filesystem


def _link_model_files(src: Path, dst: Path) -> None:
    """Only the files a model needs (`models.is_model_file`): a stray pytorch_model.bin or a note beside the
    base weights stays out of the variant and so out of the registered artifacts."""
    dst.mkdir()
    for s in sorted(src.iterdir()):
        if not is_model_file(s):
            continue
        try:
            (dst / s.name).hardlink_to(s)  # same filesystem: no second copy of the weights
        except OSError:
            shutil.copy2(s, dst / s.name)
