"""Bad input gives one clear line naming the problem and exit code 2, not a traceback."""

import pytest


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "--set", "variants=[baseline, int3]"], "unknown variant 'int3'"),
        (["run", "--set", "base_model=/nonexistent/model-dir"], "model path not found: /nonexistent/model-dir"),
        (["run", "--set", "base_model=someorg/not-cached-model"], "not in the local Hugging Face cache"),
        (["run", "--set", "noequals"], "--set expects key=value"),
    ],
)
def test_run_rejects_bad_input(cli, args, expected, tmp_path):
    out = cli(*args, env={"GREENLANE_HOME": str(tmp_path)})
    assert out.returncode == 2, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("greenlane: error:")]
    assert len(errors) == 1 and expected in errors[0], out.stderr
    assert out.stderr.strip().splitlines()[-1] == errors[0] and "Traceback" not in out.stderr


def test_malformed_config_file(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("variants: [baseline\n")
    out = cli("run", "--config", str(bad), env={"GREENLANE_HOME": str(tmp_path)})
    assert out.returncode == 2
    assert out.stderr.strip().startswith("greenlane: error: config") and "not valid YAML" in out.stderr
    assert "Traceback" not in out.stderr


def test_model_dir_with_only_pickle_weights_is_refused(cli, tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "pytorch_model.bin").write_bytes(b"")
    out = cli("run", "--set", f"base_model={model}", env={"GREENLANE_HOME": str(tmp_path)})
    assert out.returncode == 2 and "loads weights only from safetensors" in out.stderr


@pytest.mark.parametrize("variant, tool", [("gguf-q8_0", "llama.cpp's converter"), ("onnx-int4", "model builder")])
def test_an_architecture_the_exporter_does_not_know_fails_before_airflow_starts(cli, tiny_dir, tmp_path, variant, tool):
    import json
    import shutil

    model = tmp_path / "odd-arch"
    shutil.copytree(tiny_dir, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "architectures": ["OddForCausalLM"]}))
    out = cli("run", "--set", f"base_model={model}", "--set", f"variants=[baseline, {variant}]",
              env={"GREENLANE_HOME": str(tmp_path / "home")})
    assert out.returncode == 2, out.stderr[-2000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("greenlane: error:") and "'OddForCausalLM'" in last and tool in last
    assert "Traceback" not in out.stderr and not (tmp_path / "home" / "airflow").exists()
