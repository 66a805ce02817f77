"""Local profile detection against recorded and reconstructed machine roots (tests/carbon/fixtures/roots).

`detect(root, gpu_names)` takes the root directory that stands for `/` and a function standing for
NVML, so no test reads this machine's files or needs a GPU. See fixtures/README.md for which
files were recorded and which reconstructed.
"""

from __future__ import annotations

import pytest

from tasks.carbon import detect
from tasks.errors import GreenlaneError


def no_gpu() -> list[str]:
    return []


def test_cpu_only_machine_is_the_cpu_profile(roots):
    found = detect.detect(roots / "x86-epyc", no_gpu)
    assert found.hardware == "cpu" and found.cpu_model == "AMD EPYC"
    assert "AMD EPYC" in found.evidence


@pytest.mark.parametrize(
    ("names", "profile"),
    [
        (["Tesla T4"], "t4"),
        (["NVIDIA RTX 6000 Ada Generation"], "rtx6000-ada"),
        (["NVIDIA A100-SXM4-40GB"], "a100"),
        (["NVIDIA A100 80GB PCIe", "NVIDIA A100 80GB PCIe"], "a100"),
        (["NVIDIA H100 80GB HBM3"], "h100"),
        (["NVIDIA H100 PCIe"], "h100"),
    ],
)
def test_nvml_names_map_to_gpu_profiles(roots, names, profile):
    found = detect.detect(roots / "x86-epyc", lambda: names)
    assert found.hardware == profile and found.gpu_names == tuple(names) and found.cpu_model == "AMD EPYC"


@pytest.mark.parametrize(
    "names", [["NVIDIA L4"], ["Quadro RTX 6000"], ["NVIDIA T400"], ["Tesla T4", "NVIDIA H100 PCIe"]]
)
def test_unprofiled_or_mixed_gpus_are_not_guessed(roots, names):
    found = detect.detect(roots / "x86-epyc", lambda: names)
    assert found.hardware is None and "pass --hardware" in found.evidence
    with pytest.raises(GreenlaneError, match="cannot detect a hardware profile"):
        detect.detect_profile(roots / "x86-epyc", lambda: names)


def test_jetsons_from_either_device_tree_path(roots):
    agx = detect.detect(roots / "jetson-agx-orin", no_gpu)  # /proc/device-tree/model
    assert agx.hardware == "jetson-agx-orin" and agx.jetson_model == "NVIDIA Jetson AGX Orin Developer Kit"
    assert agx.cpu_model == "ARMv8 Processor rev 1 (v8l)"
    nano = detect.detect(roots / "jetson-orin-nano", no_gpu)  # /sys/firmware/devicetree/base/model
    assert nano.hardware == "jetson-orin-nano"
    xavier = detect.detect(roots / "jetson-xavier-nx", no_gpu)
    assert xavier.hardware is None and "Xavier NX" in xavier.evidence


def test_empty_root_detects_nothing(tmp_path):
    assert detect.detect(tmp_path, no_gpu).hardware is None


def test_nvml_probe_never_raises():
    # Without a driver (CI, this VM) it is []; with one it lists names. Either way, a list of str.
    names = detect.nvml_gpu_names()
    assert isinstance(names, list) and all(isinstance(n, str) for n in names)


def test_worker_report_names_the_worker_and_what_it_detected(roots, monkeypatch):
    import socket

    monkeypatch.setenv(detect.WORKER_NAME_ENV, "worker-a")
    report = detect.worker_report(roots / "jetson-orin-nano", no_gpu)
    assert report["worker"] == "worker-a" and report["hostname"] == socket.gethostname()
    assert report["detected_profile"] == "jetson-orin-nano" and "Orin Nano" in report["jetson_model"]
    assert report["gpus"] == [] and report["detected_evidence"].startswith("device-tree model")
    monkeypatch.delenv(detect.WORKER_NAME_ENV)
    assert detect.worker_report(roots / "x86-epyc", lambda: ["Tesla T4"])["worker"] == socket.gethostname()
