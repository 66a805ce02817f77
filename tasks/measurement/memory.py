"""Peak memory while a variant is loaded and serving.

On a GPU the figure is torch's peak allocation on the device (weights, KV cache,
activations), reset before the model loads. On a CPU it is the process's peak
resident set size (Linux `VmHWM`), reset before the model loads by writing `5`
to /proc/self/clear_refs, so a variant is not charged for what an earlier task
in the same process held. Where the reset is refused the figure is the peak
since the process started, and its source says so: an over-estimate, which a
memory gate reads the safe way (it can only fail more).
"""

from __future__ import annotations

from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


class PeakMemory:
    """`reset()` before loading, `read()` after serving -> (peak MB, source label)."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.rss_reset = False

    def reset(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            _CLEAR_REFS.write_text("5")
            self.rss_reset = True
        except OSError:
            self.rss_reset = False

    def read(self) -> tuple[float | None, str]:
        if self.device.startswith("cuda"):
            import torch

            return torch.cuda.max_memory_allocated(self.device) / 1e6, "cuda-max-allocated"
        peak_kb = _vm_hwm_kb()
        if peak_kb is None:
            return None, "unavailable"
        return peak_kb / 1e3, "process-peak-rss" if self.rss_reset else "process-peak-rss-since-start"


def _vm_hwm_kb() -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])  # the kernel reports kB
    except OSError:
        return None
    return None
