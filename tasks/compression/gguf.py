"""Export to GGUF for llama.cpp, optionally quantized (Q8_0, Q4_K_M, ...): an export step, served by llama.cpp.

The conversion is llama.cpp's own `convert_hf_to_gguf.py` (with the `gguf-py`
beside it: PyPI's gguf 0.19.0 lacks what the converter of llama-cpp-python
0.3.36 uses), run in a subprocess. It writes f32, f16, bf16 and q8_0 directly;
the k-quants and q4_0 are made from an f32 GGUF by llama.cpp's quantizer
(`llama_cpp.llama_model_quantize`, the code behind `llama-quantize`).

Where the converter lives: `make install` (and each Docker image) extracts
`convert_hf_to_gguf.py`, `conversion/` and `gguf-py/` from the sdist of the
pinned llama-cpp-python into `<venv>/share/greenlane/llama.cpp/`, so the
converter always matches the llama.cpp that serves the file. The environment
variable GREENLANE_LLAMA_CPP_CONVERTER points at another such folder (e.g. a
llama.cpp checkout).

The variant directory holds one `*.gguf` file, the Hugging Face tokenizer
files and config.json: every runtime tokenizes with the HF tokenizer and
feeds llama.cpp token ids, so a prompt is the same ids in every runtime.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tasks.errors import GreenlaneError

RUNTIME = "llama.cpp"
CONVERTER_ENV = "GREENLANE_LLAMA_CPP_CONVERTER"
CONVERTER_SCRIPT = "convert_hf_to_gguf.py"
# Written by the converter directly; every other type is quantized from an f32 GGUF.
CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")
# Files besides the weights that a llama.cpp variant keeps (the runtime tokenizes with the HF tokenizer).
KEPT_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
              "special_tokens_map.json", "added_tokens.json", "tokenizer.model", "vocab.json", "merges.txt")


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    quant: Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q5_k_m"] = "q8_0"
    """Weight type of the GGUF file. f32/f16/bf16: unquantized (f32 keeps the input's weights exactly); q8_0: 8-bit
    blocks of 32 (~8.5 bits/weight, near lossless); q5_k_m / q4_k_m: llama.cpp k-quants (~5.7 / ~4.9 bits/weight,
    some tensors kept at higher precision); q4_0: plain 4-bit blocks (~4.5 bits/weight). Tensors whose rows do not
    divide into a type's blocks (256 for k-quants) are stored in a fallback type, as llama-quantize does."""


def converter_dir() -> Path:
    """The folder holding convert_hf_to_gguf.py, conversion/ and gguf-py/."""
    return Path(os.environ.get(CONVERTER_ENV) or Path(sys.prefix) / "share" / "greenlane" / "llama.cpp")


def check(in_dir: Path, cfg: Config) -> None:
    """Fail before any work: no converter here, or an architecture the converter does not know."""
    folder = _find_converter()
    config = Path(in_dir) / "config.json"
    architectures = (json.loads(config.read_text()).get("architectures") or []) if config.is_file() else []
    if not architectures:
        raise GreenlaneError(f"gguf: {config} names no architecture (config.json `architectures`)")
    known = converter_architectures(folder)
    if architectures[0] not in known:
        raise GreenlaneError(
            f"gguf: architecture {architectures[0]!r} (from {config}) is not one llama.cpp's converter knows "
            f"({len(known)} known, e.g. LlamaForCausalLM, Qwen2ForCausalLM); use another export or method")


def converter_architectures(folder: Path) -> set[str]:
    """Hugging Face architecture names the converter handles, read from its source (importing it needs torch)."""
    package = folder / "conversion" / "__init__.py"
    if package.is_file():  # llama.cpp since 2026: a dict TEXT_MODEL_MAP of architecture -> module
        for node in ast.parse(package.read_text()).body:
            if isinstance(node, ast.AnnAssign | ast.Assign):
                targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
                if any(getattr(t, "id", None) == "TEXT_MODEL_MAP" for t in targets):
                    return set(ast.literal_eval(node.value))
    names: set[str] = set()  # the single-file converter: @ModelBase.register("A", "B") on each class
    for call in re.findall(r"@ModelBase\.register\(([^)]*)\)", (folder / CONVERTER_SCRIPT).read_text()):
        names.update(re.findall(r"[\"']([^\"']+)[\"']", call))
    return names


def converter_version(folder: Path) -> str:
    stamp = folder / "VERSION"  # written by the Makefile / Dockerfiles: the sdist it came from
    if stamp.is_file():
        return stamp.read_text().strip()
    gguf_py = folder / "gguf-py" / "pyproject.toml"
    found = re.search(r'^version\s*=\s*"([^"]+)"', gguf_py.read_text(), re.M) if gguf_py.is_file() else None
    return f"llama.cpp convert_hf_to_gguf.py at {folder} (gguf-py {found[1] if found else 'unknown'})"


def apply(in_dir: Path, cfg: Config, out_dir: Path) -> dict:
    from tasks.models import param_count

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    folder = _find_converter()
    out_dir.mkdir(parents=True, exist_ok=True)
    gguf_file = out_dir / f"model-{cfg.quant}.gguf"
    if cfg.quant in CONVERTER_TYPES:
        _convert(folder, in_dir, cfg.quant, gguf_file)
    else:
        with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
            # f32 in between: exact for fp32, bf16 and fp16 inputs alike, so only the quantizer rounds
            f32 = Path(tmp) / "model-f32.gguf"
            _convert(folder, in_dir, "f32", f32)
            _quantize(f32, gguf_file, cfg.quant)
    for name in KEPT_FILES:
        if (in_dir / name).is_file():
            shutil.copy2(in_dir / name, out_dir / name)
    return {"param_count": param_count(in_dir), "quant": cfg.quant, "gguf_file": gguf_file.name,
            "tensor_types": tensor_types(gguf_file), "converter": converter_version(folder)}


def tensor_types(gguf_file: Path) -> dict[str, int]:
    """How many tensors the file stores in each type, e.g. {"F32": 5, "Q5_0": 12, "Q8_0": 3}: shows where the
    quantizer fell back to another type (rows too short for k-quant blocks)."""
    from collections import Counter

    from gguf import GGUFReader

    return dict(sorted(Counter(t.tensor_type.name for t in GGUFReader(gguf_file).tensors).items()))


def _find_converter() -> Path:
    folder = converter_dir()
    if not (folder / CONVERTER_SCRIPT).is_file() or not (folder / "gguf-py").is_dir():
        raise GreenlaneError(
            f"gguf: llama.cpp's converter not found in {folder} (needs {CONVERTER_SCRIPT} and gguf-py/); run "
            f"`make install`, which extracts it from the llama-cpp-python sdist, or set {CONVERTER_ENV} to a "
            "llama.cpp checkout")
    return folder


def _convert(folder: Path, in_dir: Path, outtype: str, out_file: Path) -> None:
    # The converter's own gguf-py first on the path (it also inserts it itself unless NO_LOCAL_GGUF is set).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(folder / "gguf-py"),
                                                                       os.environ.get("PYTHONPATH")]))}
    env.pop("NO_LOCAL_GGUF", None)
    out = subprocess.run([sys.executable, str(folder / CONVERTER_SCRIPT), str(in_dir), "--outtype", outtype,
                          "--outfile", str(out_file)], env=env, capture_output=True, text=True)
    if out.returncode != 0 or not out_file.is_file():
        tail = "\n".join((out.stderr or out.stdout).strip().splitlines()[-8:])
        raise GreenlaneError(f"gguf: {CONVERTER_SCRIPT} failed on {in_dir} (exit {out.returncode}):\n{tail}")


def _quantize(src: Path, dst: Path, quant: str) -> None:
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant.upper()}")  # e.g. LLAMA_FTYPE_MOSTLY_Q4_K_M
    params.nthread = os.cpu_count() or 1
    # llama.cpp logs a line or two per tensor to stderr: kept out of the task log, shown if quantizing fails.
    with tempfile.TemporaryFile() as log:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        if rc != 0 or not dst.is_file():
            log.seek(0)
            tail = "\n".join(log.read().decode(errors="replace").strip().splitlines()[-8:])
            raise GreenlaneError(f"gguf: llama.cpp's quantizer failed on {src} ({quant}, return code {rc}):\n{tail}")
