"""Hypothesis fuzzing of what users and callers hand greenlane: config files, `--set` overrides, the CSV readers
and `greenlane trigger`'s conf. The only exception allowed out is GreenlaneError (one line, exit 2 at the CLI).

Examples are bounded (see MAX_EXAMPLES) so the module runs in well under a minute; the examples are drawn afresh
each run (no example database is written into the tree).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.config import DEFAULT_CONFIG, GreenlaneConfig, load_config, parse_overrides
from tasks.errors import GreenlaneError

# A config load validates the whole config (~20 ms); a CSV read is far cheaper. Together well under 60 s.
MAX_EXAMPLES = {"config": 60, "csv": 150, "trigger": 80}


def fuzz(kind: str):
    return settings(max_examples=MAX_EXAMPLES[kind], deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TMP = Path(tempfile.mkdtemp(prefix="greenlane-fuzz-"))


def dotted_paths(model=GreenlaneConfig, prefix: str = "") -> list[str]:
    """Every field of the config, dotted (`benchmark.energy_grid.tin`), so mutations reach the deep validators."""
    out = []
    for name, field in model.model_fields.items():
        out.append(prefix + name)
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, GreenlaneConfig.__mro__[1]) and sub is not model:
            out += dotted_paths(sub, f"{prefix}{name}.")
    return out


PATHS = dotted_paths() + ["targets.cpu." + f for f in ("pue", "region", "hardware", "queue", "runtimes", "gates",
                                                         "lifetime_years", "device", "worker_wait_s")]
WORDS = ["baseline", "bf16", "bnb-nf4", "gguf-q8_0", "onnx-int4", "cpu", "cuda", "QC", "CISO", "prune", "method",
         "chain", "name", "sparsity", "bits", "transformers", "llama.cpp", "", " ", "a/b", "é", "~nouser/x", "\x00"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True),
    st.sampled_from([math.inf, -math.inf, 1e300, 10**9, 0, -1, 0.5]), st.sampled_from(WORDS), st.text(max_size=20),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(WORDS + PATHS), st.text(max_size=8)),
                                                 inner, max_size=4)), max_leaves=12)
DEFAULT = yaml.safe_load(DEFAULT_CONFIG.read_text())


def only_greenlane_errors(call, *args):
    try:
        return call(*args)
    except GreenlaneError as err:
        assert "\n" not in str(err), str(err)  # the CLI prints it as one line
        return None


def tmp_file(name: str, content: str | bytes) -> Path:
    path = Path(tempfile.mkdtemp(dir=TMP)) / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8",
                                                                                 errors="surrogatepass")
    return path


# --- the config loader


@fuzz("config")
@given(st.lists(st.tuples(st.sampled_from(PATHS), VALUES), max_size=4))
def test_config_loader_mutated_default(mutations):
    """The shipped config with a few fields replaced by anything YAML can hold."""
    raw = json.loads(json.dumps(DEFAULT))
    for dotted, value in mutations:
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node.get(part), dict) or part not in node else {}
        node[leaf] = value
    text = yaml.safe_dump(raw, allow_unicode=True)
    only_greenlane_errors(load_config, tmp_file("c.yaml", text))


@fuzz("config")
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200), VALUES.map(lambda v: yaml.safe_dump(v))))
def test_config_loader_any_file(content):
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    only_greenlane_errors(load_config, tmp_file("c.yaml", content))


# --- the `--set` parser


PAIR = st.one_of(
    st.text(max_size=40),
    st.tuples(st.sampled_from(PATHS), st.text(max_size=30)).map("=".join),
    st.tuples(st.sampled_from(PATHS), VALUES.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip())).map("=".join),
)


@fuzz("config")
@given(st.lists(PAIR, max_size=4))
def test_set_parser_and_load(pairs):
    only_greenlane_errors(parse_overrides, pairs)
    only_greenlane_errors(load_config, None, pairs)


@fuzz("config")
@given(st.dictionaries(st.one_of(st.sampled_from(PATHS), st.text(max_size=12)), VALUES, max_size=4))
def test_overrides_dict_as_the_dag_params_give_it(overrides):
    only_greenlane_errors(load_config, None, overrides)


# --- the CSV readers


def csv_text(header: list[str]):
    cell = st.one_of(st.sampled_from(["1", "0", "-3", "1e300", "inf", "nan", "2.5", "", "2026-01-01T00:00",
                                      "2026-13-45", "x", '"', "10000001"]), st.text(max_size=10))
    row = st.lists(cell, min_size=0, max_size=len(header) + 2).map(lambda cells: ",".join(cells))
    return st.tuples(st.sampled_from([",".join(header), ",".join(reversed(header)), "", header[0]]),
                     st.lists(row, max_size=6)).map(lambda hr: "\n".join([hr[0], *hr[1]]) + "\n")


def csv_content(header: list[str]):
    return st.one_of(csv_text(header), st.binary(max_size=100), st.text(max_size=100))


def read(reader, content, suffix=".csv", *args):
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    return only_greenlane_errors(reader, tmp_file("f" + suffix, content), *args)


@fuzz("csv")
@given(csv_content(["timestamp", "gco2e_per_kwh"]))
def test_hourly_intensity_csv(content):
    from tasks.carbon import regions

    read(regions.read_hourly_csv, content)


@fuzz("csv")
@given(csv_content(["tin", "tout"]))
def test_routing_workload_csv(content):
    from tasks.routing import workload

    read(workload.read_csv, content, ".csv", 1000)


@fuzz("csv")
@given(csv_content(["tin", "tout", "energy_j", "model"]))
def test_energy_model_grid_csv(content):
    from tasks import energy_model

    read(energy_model.read_grid, content)


@fuzz("csv")
@given(csv_content(["target", "hardware", "energy_j_per_1k_tokens", "busy_s_per_1k_tokens", "energy_source"]))
def test_whatif_options_csv(content):
    from tasks.carbon import whatif

    read(whatif.read_options, content)


# --- greenlane trigger's conf, as the DAG receives it


@pytest.fixture(scope="module")
def dag_params():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dags"))
    from greenlane_wiring import config_params

    return config_params


PARAM_KEYS = ["config_path", "base_model", "variants", "targets", "region", "max_accuracy_drop", "min_accuracy",
              "max_latency_p95_ms", "overrides"]
CONF = st.one_of(
    st.text(max_size=60),
    st.dictionaries(st.sampled_from(PARAM_KEYS), VALUES, max_size=4).map(json.dumps),
    st.fixed_dictionaries({}, optional={
        "variants": st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
        "targets": st.dictionaries(st.sampled_from(WORDS), st.fixed_dictionaries({}, optional={
            "region": st.sampled_from(WORDS), "pue": st.floats(min_value=1, max_value=1e308)}), min_size=1, max_size=2),
        "region": st.sampled_from(WORDS), "overrides": st.dictionaries(st.sampled_from(PATHS), VALUES, max_size=3),
        "max_latency_p95_ms": st.floats(min_value=0, allow_infinity=True), "min_accuracy": st.floats(0, 1),
    }).map(json.dumps),
)


@fuzz("trigger")
@given(conf_text=CONF)
def test_trigger_conf_through_the_dag_params(dag_params, conf_text):
    """`greenlane trigger --conf` text -> the JSON object it sends -> Airflow's param check -> the run's config."""
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    from tasks.commands.trigger import parse_conf
    from tasks.config import config_from_params

    conf = only_greenlane_errors(parse_conf, conf_text)
    if conf is None:
        return
    params = ParamsDict(dag_params())
    try:
        params.update(conf)
        resolved = params.validate()
    except (ParamValidationError, ValueError, TypeError):
        return  # Airflow refuses the trigger (400): the run never starts
    only_greenlane_errors(config_from_params, resolved)
