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
