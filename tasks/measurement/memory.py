"""Peak memory while a variant is loaded and serving.

On a GPU the figure is torch's peak allocation on the device (weights, KV cache,
activations), reset before the model loads, when the variant runs in torch
(the transformers runtime). llama.cpp and ONNX Runtime allocate GPU memory
outside torch, so for them the figure is the GPU's memory in use at the end of
the benchmark as NVML reports it, labeled `nvml-device-used` (it includes
other processes on that GPU: an over-estimate, read the safe way by a gate). On a CPU it is the process's peak
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

    def __init__(self, device: str = "cpu", runtime: str = "transformers"):
        self.device = device
        self.torch_cuda = device.startswith("cuda") and runtime == "transformers"
        self.rss_reset = False

    def reset(self) -> None:
        if self.device.startswith("cuda") and not self.torch_cuda:
            return  # NVML's figure is read at the end; there is no peak to reset
        if self.torch_cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            _CLEAR_REFS.write_text("5")
            self.rss_reset = True
        except OSError:
            self.rss_reset = False

    def read(self) -> tuple[float | None, str]:
        if self.torch_cuda:
            import torch

            return torch.cuda.max_memory_allocated(self.device) / 1e6, "cuda-max-allocated"
        if self.device.startswith("cuda"):
            return _nvml_used_mb(), "nvml-device-used"
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


def _nvml_used_mb() -> float | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0)).used / 1e6
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML library or no GPU: no figure, and the gate on it fails closed
        return None
