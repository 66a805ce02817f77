"""What a variant carries over from its base directory: only the files a model needs."""

import shutil

from tasks.config import VariantSpec
from tasks.variants import METADATA, build_variant


def test_baseline_leaves_stray_files_of_the_base_behind(tiny_dir, tmp_path):
    from tasks import runtimes

    base = tmp_path / "base"
    shutil.copytree(tiny_dir, base)
    (base / "pytorch_model.bin").write_bytes(b"not loaded, not registered")  # a pickle beside valid safetensors
    (base / "notes.txt").write_text("scratch")
    (base / "extra").mkdir()
    out = tmp_path / "baseline"
    build_variant(base, VariantSpec(name="baseline"), out, base_model=str(base))

    names = {p.name for p in out.iterdir()}
    assert not names & {"pytorch_model.bin", "notes.txt", "extra"}
    assert names == {p.name for p in tiny_dir.iterdir()} | {METADATA}  # everything a model needs came along
    assert (out / "model.safetensors").stat().st_ino == (base / "model.safetensors").stat().st_ino  # hard link
    assert runtimes.load(out) is not None
