"""Inference runtimes, one module each, all the same shape.

A runtime module defines `NAME`, `PACKAGE` (the import name of the library it
drives, checked without importing it), `DEVICES` (the devices it can run on),
`FORMAT` (what a variant directory holds for it), `gpu_available() -> bool`
(whether this build of the library can run on a CUDA GPU here) and
`load(model_dir: Path, device: str, threads: int | None) -> Runtime`
(see `tasks.runtimes.base.Runtime` for what a loaded runtime offers).
Heavy imports stay inside `load`.

A variant's runtime follows from the last step of its method chain (export
steps such as `gguf` and `onnx` name theirs); a plain checkpoint runs in
`transformers`. Measurement asks a runtime for what it needs and never imports
transformers, llama_cpp or onnxruntime_genai itself.

Adding a runtime is one file plus one line in `RUNTIMES`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType

from tasks.errors import GreenlaneError

RUNTIMES = {
    "transformers": "tasks.runtimes.hf",
    "llama.cpp": "tasks.runtimes.llamacpp",
    "onnxruntime-genai": "tasks.runtimes.ortgenai",
}
# Import names, so "is it installed" never imports a native library.
PACKAGES = {"transformers": "transformers", "llama.cpp": "llama_cpp", "onnxruntime-genai": "onnxruntime_genai"}
DEFAULT_RUNTIME = "transformers"
DEVICES = ("cpu", "cuda")
# What each kind of machine can run when a target does not list its runtimes.
DEVICE_RUNTIMES = {
    "cpu": ["transformers", "llama.cpp", "onnxruntime-genai"],
    "cuda": ["transformers", "llama.cpp", "onnxruntime-genai"],
    "jetson": ["transformers", "llama.cpp"],  # no onnxruntime-genai build for the Jetson's CUDA on PyPI
}


def runtime_module(name: str) -> ModuleType:
    if name not in RUNTIMES:
        raise GreenlaneError(f"unknown runtime {name!r}; registered runtimes: {', '.join(RUNTIMES)}")
    return importlib.import_module(RUNTIMES[name])


def installed(name: str) -> bool:
    """Whether the runtime's library can be imported here (looked up, not imported)."""
    if name not in PACKAGES:
        raise GreenlaneError(f"unknown runtime {name!r}; registered runtimes: {', '.join(RUNTIMES)}")
    return importlib.util.find_spec(PACKAGES[name]) is not None


def runtime_of(variant_dir: Path) -> str:
    """The runtime a variant directory is served with (recorded in its metadata by the chain's last step)."""
    meta = Path(variant_dir) / "greenlane_variant.json"
    if meta.is_file():
        return json.loads(meta.read_text()).get("runtime", DEFAULT_RUNTIME)
    return DEFAULT_RUNTIME


def load(model_dir: Path | str, device: str = "cpu", threads: int | None = None, runtime: str | None = None):
    """Load a variant (or base model) directory in its runtime on `device` ("cpu" or "cuda") with `threads`
    compute threads (None: every core this process may use)."""
    model_dir = Path(model_dir)
    name = runtime or runtime_of(model_dir)
    if device not in DEVICES:
        raise GreenlaneError(f"unknown device {device!r}; devices: {', '.join(DEVICES)}")
    module = runtime_module(name)
    if device not in module.DEVICES:
        raise GreenlaneError(f"runtime {name} cannot run on {device} (it runs on {', '.join(module.DEVICES)})")
    if not installed(name):
        raise GreenlaneError(f"runtime {name} is not installed here (python package {PACKAGES[name]}); "
                             "see the README's install section")
    if device == "cuda" and not module.gpu_available():
        # Never fall back to the CPU: the figures would be labeled as the GPU's (and NVML would read an idle GPU).
        raise GreenlaneError(f"device cuda: runtime {name} sees no usable CUDA GPU on this machine (no GPU, or a "
                             "CPU-only build of its library); run this target on a GPU worker or set its device: cpu")
    # One thread count for every runtime, so they compare like for like (llama.cpp alone would take half the cores).
    return module.load(model_dir, device, threads or len(os.sched_getaffinity(0)))
