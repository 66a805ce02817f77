import pytest

from tasks.config import DEFAULT_CONFIG, load_config, parse_overrides
from tasks.errors import GreenlaneError


def test_default_config_loads_and_names_registered_methods():
    cfg = load_config(DEFAULT_CONFIG)
    assert [v.name for v in cfg.variants][0] == "baseline"
    assert cfg.default_target in cfg.targets
    from tasks.compression import METHODS

    for v in cfg.variants:
        assert all(step.method in METHODS for step in v.chain)


def test_overrides_are_parsed_as_yaml_and_nested():
    assert parse_overrides(["eval.limit=5", "variants=[baseline, bf16]", "gates.max_latency_p95_ms=null"]) == {
        "eval": {"limit": 5}, "variants": ["baseline", "bf16"], "gates": {"max_latency_p95_ms": None}
    }
    cfg = load_config(DEFAULT_CONFIG, ["eval.limit=5", "variants=[baseline, bf16]"])
    assert cfg.eval.limit == 5 and [v.name for v in cfg.variants] == ["baseline", "bf16"]


@pytest.mark.parametrize(
    "override, expected",
    [
        ("variants=[baseline, int3]", "unknown variant 'int3'"),
        ("variants=[bf16]", "must include 'baseline'"),
        ("eval.limit=0", "eval.limit"),
        ("gates.max_accuracy_drop=2", "gates.max_accuracy_drop"),
        ("targets.cpu.pue=0.5", "targets.cpu.pue"),
        ("default_target=gpu", "default_target 'gpu'"),
        ("colour=blue", "colour"),
        ("variants=[baseline, {name: q, chain: [{method: bnb, bits: 3}]}]", "variants[q].chain[0].bits"),
        ("variants=[baseline, {name: q, chain: [{method: zip}]}]", "unknown method 'zip'"),
        # runtimes and export steps
        ("targets.cpu.runtimes=[vllm]", "targets.cpu.runtimes: unknown runtime 'vllm'"),
        ("targets.cpu.device=tpu", "targets.cpu.device"),
        ("variants=[baseline, {name: g, chain: [{method: gguf, quant: q3_x}]}]", "variants[g].chain[0].quant"),
        ("variants=[baseline, {name: o, chain: [{method: onnx, precision: int2}]}]", "variants[o].chain[0].precision"),
        ("variants=[baseline, {name: g, chain: [{method: gguf}, {method: cast}]}]",
         "variants[g].chain[1]: cast cannot follow the export step gguf"),
    ],
)
def test_bad_values_fail_at_load_naming_the_field(override, expected):
    with pytest.raises(GreenlaneError) as err:
        load_config(DEFAULT_CONFIG, [override])
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_malformed_yaml_names_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("variants: [baseline\ngates: {\n")
    with pytest.raises(GreenlaneError, match="not valid YAML.*line"):
        load_config(bad)


def test_missing_config_file(tmp_path):
    with pytest.raises(GreenlaneError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_a_listed_runtime_must_be_installed(monkeypatch):
    from tasks import runtimes

    monkeypatch.setattr(runtimes, "installed", lambda name: name != "llama.cpp")
    with pytest.raises(GreenlaneError, match=r"targets\.cpu\.runtimes: runtime 'llama.cpp' is listed but not installed"):
        load_config(DEFAULT_CONFIG, ["targets.cpu.runtimes=[transformers, llama.cpp]", "variants=[baseline]"])
    with pytest.raises(GreenlaneError, match=r"variants\[gguf-q8_0\]: runs in llama.cpp, which is not installed"):
        load_config(DEFAULT_CONFIG, ["variants=[baseline, gguf-q8_0]"])
    # A task on another worker re-reads the run's validated config: this machine's installs are not checked there
    from tasks.config import config_from_dict

    raw = {"variants": ["baseline", "gguf-q8_0"], "targets": {"cpu": {"runtimes": ["transformers", "llama.cpp"]}}}
    assert [v.name for v in config_from_dict(raw).variants] == ["baseline", "gguf-q8_0"]


def test_variants_a_target_cannot_run_are_skipped_with_the_reason(tmp_path):
    cfg = load_config(DEFAULT_CONFIG, [
        "variants=[baseline, gguf-q8_0, onnx-int4]",
        "targets={cpu: {}, jetson: {hardware: jetson-orin-nano}, gpu: {device: cuda, runtimes: [transformers]}}",
    ])
    assert cfg.skip_reason("gguf-q8_0", "cpu") is None and cfg.skip_reason("onnx-int4", "cpu") is None
    assert cfg.skip_reason("gguf-q8_0", "jetson") is None  # a Jetson serves transformers and llama.cpp
    assert "runs in onnxruntime-genai, which target jetson does not serve" in cfg.skip_reason("onnx-int4", "jetson")
    assert "target gpu does not serve (its runtimes: transformers)" in cfg.skip_reason("gguf-q8_0", "gpu")

    import json

    from tasks.pipeline import plan_benchmarks

    (tmp_path / "config.json").write_text(json.dumps(cfg.model_dump(mode="json")))
    jobs = plan_benchmarks({"config_file": str(tmp_path / "config.json"), "dag_run_id": "r"})
    planned = sorted((j["variant"], j["target"]) for j in jobs)
    assert planned == sorted([("baseline", "cpu"), ("gguf-q8_0", "cpu"), ("onnx-int4", "cpu"), ("baseline", "jetson"),
                              ("gguf-q8_0", "jetson"), ("baseline", "gpu")])


@pytest.mark.parametrize("value", ["true", "false"])
def test_trust_remote_code_was_removed_and_says_why(value):
    with pytest.raises(GreenlaneError) as err:
        load_config(DEFAULT_CONFIG, [f"trust_remote_code={value}"])
    assert str(err.value) == (
        f"{DEFAULT_CONFIG}: trust_remote_code: greenlane never runs a model repository's own Python code, so this "
        "setting was removed; delete it and use a base model whose architecture transformers ships"
    )

