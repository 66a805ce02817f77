"""A table of bad CLI, config, CSV and workload inputs, each run through the real `greenlane` command.

Every row must end with exit code 2, exactly one line on stderr (`greenlane: error: ...` naming the problem), no
traceback, within 5 s; a `run` row must fail before Airflow or MLflow start (nothing can have been promoted).
The README's "Faults and bad input" table is this table's results. Rows that argparse itself rejects (usage line
plus error line) are not here: argparse's two-line format is its own.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

CREDS = {"GREENLANE_AIRFLOW_USER": "ci", "GREENLANE_AIRFLOW_PASSWORD": "x"}
HOURS_BAD = "timestamp,gco2e_per_kwh\n2026-01-01T00:00,lots\n"
HOURS_INF = "timestamp,gco2e_per_kwh\n2026-01-01T00:00,inf\n"
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00\x01"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return path


def model_dir(t: Path, config: str | bytes = "{}", weights: bytes | None = None, name: str = "model.safetensors") -> Path:
    """A model directory whose files are as given; `weights=None` writes a real (tiny) safetensors file."""
    from safetensors.numpy import save_file

    d = t / "model"
    write(d / "config.json", config)
    if weights is None:
        save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(d / name))
    else:
        write(d / name, weights)
    return d


def grid_csv(t: Path, first_row: str | None = None) -> Path:
    rows = [f"{i},{o},{1 + 0.01 * i + 0.5 * o},{0.1 + 0.02 * o}" for i in (8, 32, 128, 512) for o in (8, 32, 128)]
    if first_row:
        rows[0] = first_row
    return write(t / "grid.csv", "tin,tout,energy_j,runtime_s\n" + "\n".join(rows) + "\n")


def candidates(t: Path) -> Path:
    """Two routing candidates with energy and runtime models fitted (by the library) on a synthetic grid."""
    from tasks.energy_model import fit_csv, save_models

    grid = grid_csv(t)
    models = {target: fit_csv(grid, target)["all"] for target in ("energy_j", "runtime_s")}
    entries = []
    for name, acc in (("big", 0.8), ("small", 0.5)):
        save_models(models, t / name / "energy_model.json")
        entries.append({"name": name, "accuracy": acc, "energy_model": f"{name}/energy_model.json",
                        "energy_source": "rapl", "region": "QC", "hardware": "cpu"})
    return write(t / "candidates.json", json.dumps(entries))


def route(t: Path, workload: str, *extra: str) -> list[str]:
    return ["route", "--candidates", str(candidates(t)), "--workload", workload, "--zeta", "1", *extra]


# (id, args builder taking a fresh tmp dir, substring the error line must hold, extra env)
RUN = [
    ("pue-inf", lambda t: ["--set", "targets.cpu.pue=.inf"], "targets.cpu.pue: Input should be a finite number"),
    ("lifetime-inf", lambda t: ["--set", "targets.cpu.lifetime_years=.inf"], "lifetime_years: Input should be a finite number"),
    ("gate-nan", lambda t: ["--set", "gates.max_latency_p95_ms=.nan"], "max_latency_p95_ms: Input should be a finite number"),
    ("price-inf", lambda t: ["--set", "targets.cpu.energy_usd_per_kwh=-.inf"], "energy_usd_per_kwh: Input should be a finite number"),
    ("prompts-1e9", lambda t: ["--set", "benchmark.prompts=1000000000"], "benchmark.prompts: Input should be less than or equal to 10000"),
    ("max-new-tokens-1e9", lambda t: ["--set", "benchmark.max_new_tokens=1000000000"], "less than or equal to 32768"),
    ("batch-size-huge", lambda t: ["--set", "benchmark.batch_sizes=[1, 100000]"], "(MAX_BATCH_SIZE)"),
    ("grid-token-huge", lambda t: ["--set", "benchmark.energy_grid={tin: [16, 1000000], tout: [8]}"], "(MAX_GRID_TOKENS)"),
    ("repeats-huge", lambda t: ["--set", "benchmark.max_repeats=100000000"], "benchmark.max_repeats: Input should be less"),
    ("seed-negative", lambda t: ["--set", "seed=-1"], "seed: Input should be greater than or equal to 0"),
    ("target-slash", lambda t: ["--set", "targets={a/b: {}}"], "target name 'a/b' must be letters"),
    ("target-space-accent", lambda t: ["--set", "targets={'cpu é': {}}"], "target name 'cpu é' must be letters"),
    ("target-too-long", lambda t: ["--set", "targets={" + "x" * 250 + ": {}}"], "(at most 246 characters)"),
    ("registered-model-quote", lambda t: ["--set", "mlflow.registered_model=a'b"], "registered model name \"a'b\""),
    ("registered-model-slash", lambda t: ["--set", "mlflow.registered_model=org/m"], "registered model name 'org/m'"),
    ("hours-csv-missing", lambda t: ["--set", "carbon.hours_csv=/nonexistent.csv"], "'/nonexistent.csv' does not exist"),
    ("hours-csv-binary", lambda t: ["--set", f"carbon.hours_csv={write(t / 'h.csv', BINARY)}"], "h.csv is not a UTF-8 text CSV"),
    ("hours-csv-columns", lambda t: ["--set", "carbon.hours_csv=" + str(write(t / "h.csv", "time,ci\n1,2\n"))], "missing column(s)"),
    ("hours-csv-value", lambda t: ["--set", "carbon.hours_csv=" + str(write(t / "h.csv", HOURS_BAD))], "h.csv:2: cannot read"),
    ("hours-csv-inf", lambda t: ["--set", "carbon.hours_csv=" + str(write(t / "h.csv", HOURS_INF))], "got inf (and finite)"),
    ("tracking-uri-scheme", lambda t: ["--set", "mlflow.tracking_uri=bogus://x"], "no tracking store for scheme 'bogus'"),
    ("set-yaml-unclosed", lambda t: ["--set", "variants=[baseline, bf16"], "--set variants: the value '[baseline, bf16' is not valid YAML"),
    ("set-yaml-tab", lambda t: ["--set", "eval.limit=\t- x: [}"], "--set eval.limit: the value"),
    ("set-no-equals", lambda t: ["--set", "noequals"], "--set expects key=value"),
    ("set-empty-key-part", lambda t: ["--set", "benchmark..prompts=3"], "a key is dotted names"),
    ("set-conflict", lambda t: ["--set", "eval=1", "--set", "eval.limit=2"], "conflicts with another override"),
    ("unknown-key", lambda t: ["--set", "benchmark.promtps=3"], "benchmark.promtps: Extra inputs are not permitted"),
    ("removed-key", lambda t: ["--set", "trust_remote_code=true"], "greenlane never runs a model repository's own Python code"),
    ("unknown-variant", lambda t: ["--set", "variants=[baseline, int3]"], "unknown variant 'int3'"),
    ("no-baseline", lambda t: ["--set", "variants=[bf16]"], "variants must include 'baseline'"),
    ("unknown-region", lambda t: ["--set", "targets.cpu.region=ATLANTIS"], "targets.cpu.region"),
    ("unknown-hardware", lambda t: ["--set", "targets.cpu.hardware=abacus"], "targets.cpu.hardware"),
    ("unknown-runtime", lambda t: ["--set", "targets.cpu.runtimes=[tensorrt]"], "unknown runtime 'tensorrt'"),
    ("gate-out-of-range", lambda t: ["--set", "gates.max_accuracy_drop=2"], "gates.max_accuracy_drop: Input should be less"),
    ("default-target-missing", lambda t: ["--set", "default_target=gpu"], "default_target 'gpu' is not one of the targets"),
    ("model-missing", lambda t: ["--set", "base_model=/nonexistent/model-dir"], "model path not found: /nonexistent/model-dir"),
    ("model-not-cached", lambda t: ["--set", "base_model=someorg/not-cached-model"], "not in the local Hugging Face cache"),
    ("model-pickle-only", lambda t: ["--set", f"base_model={model_dir(t, weights=b'', name='pytorch_model.bin')}"],
     "no *.safetensors weights (pytorch_model.bin)"),
    ("model-config-not-json", lambda t: ["--set", f"base_model={model_dir(t, config='{not json')}"], "config.json is not a readable JSON object"),
    ("model-config-binary", lambda t: ["--set", f"base_model={model_dir(t, config=BINARY)}"], "config.json is not a readable JSON object"),
    ("model-config-list", lambda t: ["--set", f"base_model={model_dir(t, config='[1, 2]')}"], "config.json is not a readable JSON object"),
    ("model-safetensors-corrupt", lambda t: ["--set", f"base_model={model_dir(t, weights=BINARY * 10)}"], "is not a readable safetensors file"),
    ("model-safetensors-empty", lambda t: ["--set", f"base_model={model_dir(t, weights=b'')}"], "is not a readable safetensors file"),
    ("config-file-missing", lambda t: ["--config", str(t / "nope.yaml")], "config file not found"),
    ("config-file-yaml", lambda t: ["--config", str(write(t / "c.yaml", "variants: [baseline\n"))], "is not valid YAML (line 2"),
    ("config-file-binary", lambda t: ["--config", str(write(t / "c.yaml", BINARY))], "cannot read config"),
    ("config-file-list", lambda t: ["--config", str(write(t / "c.yaml", "- a\n- b\n"))], "must be a mapping of settings, got list"),
]
ENV_RUN = [
    ("env-tracking-uri", lambda t: [], "env MLFLOW_TRACKING_URI 'bogus://x'", {"MLFLOW_TRACKING_URI": "bogus://x"}),
]
OTHER = [
    ("fit-missing-csv", lambda t: ["energy-model", "fit", "--csv", str(t / "none.csv")], "no such CSV file"),
    ("fit-binary-csv", lambda t: ["energy-model", "fit", "--csv", str(write(t / "g.csv", BINARY))], "is not a UTF-8 text CSV"),
    ("fit-no-columns", lambda t: ["energy-model", "fit", "--csv", str(write(t / "g.csv", "a,b\n1,2\n"))], "missing column(s) tin, tout"),
    ("fit-token-1e300", lambda t: ["energy-model", "fit", "--csv", str(grid_csv(t, "1e300,8,5.0,1.0"))], "(MAX_TOKENS)"),
    ("fit-out-is-dir", lambda t: ["energy-model", "fit", "--csv", str(grid_csv(t)), "--out", str(t)], "cannot write the energy models"),
    ("route-token-1e300", lambda t: route(t, str(write(t / "w.csv", "tin,tout\n5,10\n1e300,20\n"))), "column tin: '1e300' is not a token count"),
    ("route-binary-workload", lambda t: route(t, str(write(t / "w.csv", BINARY))), "is not a UTF-8 text CSV"),
    ("route-missing-workload", lambda t: route(t, str(t / "none.csv")), "no such workload CSV"),
    ("route-pulp-too-large", lambda t: route(t, "synthetic:20001", "--solver", "pulp"), "routes at most 20,000"),
    ("route-binary-candidates", lambda t: ["route", "--candidates", str(write(t / "c.json", BINARY)), "--workload",
                                           "synthetic:10", "--zeta", "1"], "c.json"),
    ("trigger-conf-json", lambda t: ["trigger", "--conf", '{"a": 1,}', "--url", "http://127.0.0.1:1"], "--conf is not valid JSON"),
    ("trigger-conf-list", lambda t: ["trigger", "--conf", '["v3"]', "--url", "http://127.0.0.1:1"], "--conf must be a JSON object"),
    ("trigger-plain-http", lambda t: ["trigger", "--url", "http://10.0.0.5:8080"], "refusing plain http to 10.0.0.5"),
    ("trigger-file-url", lambda t: ["trigger", "--url", "file:///etc/passwd"], "is not an http(s) URL"),
]
ENV_OTHER = [
    ("trigger-no-credentials", lambda t: ["trigger", "--url", "http://127.0.0.1:1"], "set GREENLANE_AIRFLOW_USER",
     {"GREENLANE_AIRFLOW_USER": "", "GREENLANE_AIRFLOW_PASSWORD": ""}),
]
CASES = ([(i, lambda t, b=b: ["run", *b(t)], m, {}) for i, b, m in RUN] + [(i, lambda t, b=b: ["run", *b(t)], m, e) for i, b, m, e in ENV_RUN]
         + [(i, b, m, CREDS) for i, b, m in OTHER] + list(ENV_OTHER))


def test_the_table_has_at_least_40_rows():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("builder, expected, env", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_within_5_s(cli, builder, expected, env, tmp_path):
    home = tmp_path / "home"
    args = builder(tmp_path / "in")
    t0 = time.monotonic()
    out = cli(*args, env={"GREENLANE_HOME": str(home), **env}, timeout=60)
    elapsed = time.monotonic() - t0
    lines = out.stderr.splitlines()
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    assert len(lines) == 1 and lines[0].startswith("greenlane: error: "), out.stderr[-3000:]
    assert expected in lines[0]
    assert elapsed < 5, f"{elapsed:.1f} s"
    if args[0] == "run":  # failed at load: Airflow and MLflow never started, so no alias can have moved
        assert not (home / "airflow").exists() and not (home / "mlflow.db").exists()
