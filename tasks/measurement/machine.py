"""What this machine's CPU is, as /proc/cpuinfo names it: the benchmark record states it, and
tasks.carbon.detect maps it (with the Jetson and GPU checks) to a hardware profile."""

from __future__ import annotations

from pathlib import Path


def read_cpu_model(root: str | Path = "/") -> str | None:
    """`model name` (x86) or `Hardware`/`Processor` (Arm) from `<root>/proc/cpuinfo`; None when it says neither."""
    path = Path(root) / "proc" / "cpuinfo"
    if not path.is_file():
        return None
    fields: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "hardware", "processor", "cpu model"):
        # on Arm, `processor` is the core index ("0"): not a model
        if key in fields and not fields[key].isdigit():
            return fields[key]
    return None
