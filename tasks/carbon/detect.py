"""Which hardware profile is this machine? Jetson first, then an NVIDIA GPU, then the CPU.

- Jetson: the device-tree model string (`/proc/device-tree/model`, or
  `/sys/firmware/devicetree/base/model`; NUL-terminated), e.g. "NVIDIA Jetson AGX Orin Developer Kit".
- GPU: NVML device names (pynvml, when importable and an NVIDIA driver answers), e.g. "Tesla T4".
- CPU: `model name` (x86) or `Hardware`/`Processor` (Arm) from `/proc/cpuinfo` -> the `cpu` profile.

`root` and `gpu_names` are parameters so tests replay recorded files and NVML answers. Detection
never guesses: a Jetson or GPU without a profile gives `hardware=None` and says why. `worker_report`
is what a worker records about itself next to each benchmark and profile.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tasks.errors import GreenlaneError
from tasks.measurement.machine import read_cpu_model  # shared with the benchmark record

JETSON_MODEL_FILES = ("proc/device-tree/model", "sys/firmware/devicetree/base/model")
WORKER_NAME_ENV = "GREENLANE_WORKER_NAME"  # the name a worker reports (docker-compose sets it); default: hostname

# Regexes over the lower-cased NVML name / device-tree model; first match wins.
GPU_PATTERNS = (
    (r"\bt4\b", "t4"),
    (r"rtx 6000 ada", "rtx6000-ada"),
    (r"\ba100\b", "a100"),
    (r"\bh100\b", "h100"),
)
JETSON_PATTERNS = (
    (r"agx orin", "jetson-agx-orin"),
    (r"orin nano", "jetson-orin-nano"),
)


@dataclass(frozen=True)
class Detection:
    hardware: str | None
    """Profile name, or None when what was found has no profile."""
    evidence: str
    """What was read and why it maps (or not) to `hardware`."""
    cpu_model: str | None = None
    gpu_names: tuple[str, ...] = field(default_factory=tuple)
    jetson_model: str | None = None


def read_jetson_model(root: str | Path = "/") -> str | None:
    for rel in JETSON_MODEL_FILES:
        path = Path(root) / rel
        if path.is_file():
            text = path.read_bytes().split(b"\0", 1)[0].decode("utf-8", "replace").strip()
            if text:
                return text
    return None


def nvml_gpu_names() -> list[str]:
    """Names of the NVIDIA GPUs NVML reports; [] without pynvml or a working driver."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver / no GPU: NVMLError subclasses, or OSError when libnvidia-ml is absent
        return []
    try:
        names = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
            names.append(name.decode() if isinstance(name, bytes) else str(name))
        return names
    finally:
        pynvml.nvmlShutdown()


def _match(text: str, patterns) -> str | None:
    low = text.lower()
    return next((profile for pattern, profile in patterns if re.search(pattern, low)), None)


def profile_for_gpu(name: str) -> str | None:
    return _match(name, GPU_PATTERNS)


def profile_for_jetson(model: str) -> str | None:
    return _match(model, JETSON_PATTERNS) if "jetson" in model.lower() else None


def detect(root: str | Path = "/", gpu_names: Callable[[], list[str]] = nvml_gpu_names) -> Detection:
    """The local machine's profile; `root` stands for `/` and `gpu_names` for NVML."""
    jetson = read_jetson_model(root)
    cpu = read_cpu_model(root)
    if jetson and "jetson" in jetson.lower():
        profile = profile_for_jetson(jetson)
        why = f"device-tree model {jetson!r}"
        why += f" -> {profile}" if profile else " has no profile (known Jetsons: AGX Orin, Orin Nano); pass --hardware"
        return Detection(profile, why, cpu_model=cpu, jetson_model=jetson)
    gpus = tuple(gpu_names())
    if gpus:
        profiles = {profile_for_gpu(g) for g in gpus}
        if len(profiles) == 1 and None not in profiles:
            profile = profiles.pop()
            return Detection(profile, f"NVML GPU(s) {', '.join(gpus)} -> {profile}", cpu_model=cpu, gpu_names=gpus)
        why = f"NVML GPU(s) {', '.join(gpus)}: " + (
            "mixed models; pass --hardware" if None not in profiles else "no profile for this GPU; pass --hardware"
        )
        return Detection(None, why, cpu_model=cpu, gpu_names=gpus)
    if cpu:
        return Detection("cpu", f"no GPU; /proc/cpuinfo CPU {cpu!r} -> cpu", cpu_model=cpu)
    return Detection(None, f"nothing recognised under {root} (no device-tree model, NVML GPU or /proc/cpuinfo)")


def detect_profile(root: str | Path = "/", gpu_names: Callable[[], list[str]] = nvml_gpu_names) -> str:
    """The detected profile name, or a GreenlaneError saying what was found instead."""
    found = detect(root, gpu_names)
    if found.hardware is None:
        raise GreenlaneError(f"cannot detect a hardware profile: {found.evidence}; see `greenlane carbon --list`")
    return found.hardware


def worker_report(root: str | Path = "/", gpu_names: Callable[[], list[str]] = nvml_gpu_names) -> dict:
    """What this machine is, as the worker running the task sees it (not what the config claims)."""
    found = detect(root, gpu_names)
    return {
        "hostname": socket.gethostname(),
        "worker": os.environ.get(WORKER_NAME_ENV) or socket.gethostname(),
        "cpu_model": found.cpu_model,
        "gpus": list(found.gpu_names),
        "jetson_model": found.jetson_model,
        "detected_profile": found.hardware,
        "detected_evidence": found.evidence,
    }
