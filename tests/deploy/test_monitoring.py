"""The `serve` profile of docker-compose.yml: the served champion, Prometheus, Grafana and the statsd-exporter.

The compose file is read by Docker Compose's own loader, as in test_compose.py. Prometheus' config is checked by
its own `promtool` and the dashboard's queries run in a real Prometheus (Debian's `prometheus` package, which
`make system-deps` installs) against the metrics the server's own module exports. Grafana itself is not run:
neither Debian, PyPI nor npm packages the Grafana server.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from test_compose import REPO, config

PROMETHEUS_YML = REPO / "docker" / "prometheus" / "prometheus.yml"
GRAFANA = REPO / "docker" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "greenlane.json"
SERVE_PROFILE = {"serve", "prometheus", "grafana", "statsd-exporter"}
# What the issue asks the dashboard to show, as the metric each needs.
REQUIRED_METRICS = {
    "energy": "greenlane_energy_joules_total",
    "carbon": "greenlane_carbon_gco2e_total",
    "tokens/s": "greenlane_tokens_total",
    "p95 latency": "greenlane_request_seconds_bucket",
    "cache hit ratio": "greenlane_cache_requests_total",
    "live J/1k tokens": "greenlane_energy_j_per_1k_tokens",
    "benchmarked J/1k tokens": "greenlane_benchmark_energy_j_per_1k_tokens",
}
# PromQL words that are not metric names (functions are recognized by their parenthesis).
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                   "offset"}


@pytest.fixture(scope="module")
def stack() -> dict:
    return config("serve")


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def _option(command: list[str], name: str) -> str:
    """`--name=value` from a command list."""
    [value] = [c.split("=", 1)[1] for c in command if c.startswith(f"{name}=")]
    return value


def _mount(service: dict, source: Path) -> dict:
    [mount] = [v for v in service["volumes"] if v["type"] == "bind" and Path(v["source"]) == source]
    return mount


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions, keywords, label names
    (in braces or by/without/on/ignoring lists), ranges or strings."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr)
    return {n for n in names if n not in PROMQL_KEYWORDS}


def served_metrics():
    """The server's metrics module with every series it defines set once, through its own code paths."""
    from tasks.measurement.energy import EnergyReading
    from tasks.serving.metrics import EnergyMonitor, ServeMetrics

    class Meter:  # one window of 2 J per start/stop, labelled like a CPU estimate
        def start(self):
            pass

        def stop(self):
            return EnergyReading(energy_j=2.0, duration_s=0.05, source="estimate:test")

    m = ServeMetrics("tiny", "3", "cpu")
    m.request("/v1/chat/completions", 200)
    m.served(prompt_tokens=12, completion_tokens=8, ttft_s=0.05, total_s=0.3)
    m.cache_lookup(hit=True)
    m.cache_lookup(hit=False)
    m.runtime_call(size=2, generated_tokens=8)
    m.set_benchmark(250.0, "estimate:test")
    monitor = EnergyMonitor(Meter(), m, footprint=lambda j, s: j * 1e-4, window_s=0.05)
    monitor.start()
    time.sleep(0.2)
    monitor.stop()
    return m


def exported_names(metrics) -> set[str]:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    text = generate_latest(metrics.registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_serve_profile_adds_the_server_and_its_monitoring(stack):
    assert SERVE_PROFILE <= set(stack["services"])
    for name in SERVE_PROFILE:
        assert stack["services"][name]["profiles"] == ["serve"], name
    published = {name: p for name, svc in stack["services"].items() for p in svc.get("ports", [])}
    assert all(p["host_ip"] == "127.0.0.1" for p in published.values()), published
    assert "statsd-exporter" not in published  # only Prometheus reads it, over the compose network

    serve = stack["services"]["serve"]
    cmd = serve["command"]
    assert cmd[:4] == ["python", "-m", "tasks.cli", "serve"] and _flag(cmd, "--alias") == "champion-cpu"
    port = int(_flag(cmd, "--port"))
    # inside its container it must listen beyond loopback for Prometheus; the host publishes it on loopback only
    assert _flag(cmd, "--host") == "0.0.0.0"
    assert [(p["host_ip"], p["target"]) for p in serve["ports"]] == [("127.0.0.1", port)]
    assert f"localhost:{port}/health" in " ".join(serve["healthcheck"]["test"])
    assert serve["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert serve["build"]["dockerfile"] == "docker/airflow/Dockerfile"
    # off loopback the server wants a bearer token: its variable comes from .env
    assert serve["environment"][_flag(cmd, "--api-key-env")]
    # the shared cache in the stack's Redis, not in Celery's broker database (0)
    assert _flag(cmd, "--cache") == "redis"
    assert re.fullmatch(r"redis://:[^@]+@redis:6379/[1-9]\d*", _flag(cmd, "--redis-url"))


def test_the_serve_command_parses_with_greenlanes_own_parser(stack):
    """A renamed or removed flag of `greenlane serve` fails here, not in a container at start."""
    from tasks.cli import build_parser

    cmd = stack["services"]["serve"]["command"]
    args = build_parser().parse_args(cmd[3:])
    assert args.alias == "champion-cpu" and args.cache == "redis" and args.host == "0.0.0.0"
    assert args.port == int(_flag(cmd, "--port")) and args.api_key_env == "GREENLANE_SERVE_API_KEY"


def test_prometheus_scrapes_the_server_and_the_statsd_exporter(stack):
    services = stack["services"]
    prom = services["prometheus"]
    assert _mount(prom, PROMETHEUS_YML)["target"] == _option(prom["command"], "--config.file")
    scrape = {job["job_name"]: job for job in yaml.safe_load(PROMETHEUS_YML.read_text())["scrape_configs"]}

    serve_port = _flag(services["serve"]["command"], "--port")
    job = scrape["greenlane-serve"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert [t for c in job["static_configs"] for t in c["targets"]] == [f"serve:{serve_port}"]

    exporter = services["statsd-exporter"]["command"]
    assert [t for c in scrape["airflow-statsd"]["static_configs"] for t in c["targets"]] == [
        "statsd-exporter" + _option(exporter, "--web.listen-address")]
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter"
    assert ":" + env["AIRFLOW__METRICS__STATSD_PORT"] == _option(exporter, "--statsd.listen-udp")
    assert env["AIRFLOW__METRICS__STATSD_ON"] == "false"  # .env.example leaves it off: the exporter may be down


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing: make system-deps (Debian prometheus)")
def test_promtool_accepts_the_config():
    out = subprocess.run(["promtool", "check", "config", str(PROMETHEUS_YML)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(stack):
    grafana = stack["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]  # from .env, required
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    provisioning = _mount(grafana, GRAFANA / "provisioning")
    assert provisioning["target"] == "/etc/grafana/provisioning" and provisioning["read_only"]
    dashboards_dir = _mount(grafana, GRAFANA / "dashboards")["target"]

    [source] = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    [provider] = yaml.safe_load((GRAFANA / "provisioning/dashboards/greenlane.yml").read_text())["providers"]
    assert provider["options"]["path"] == dashboards_dir
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dashboards_dir}/{DASHBOARD.name}"

    dashboard = json.loads(DASHBOARD.read_text())
    used = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    used |= {p["datasource"]["uid"] for p in dashboard["panels"]}
    assert used == {source["uid"]}


def test_dashboard_queries_only_metrics_the_server_exports():
    exported = exported_names(served_metrics())
    queried = set().union(*(metric_names(e) for e in dashboard_exprs()))
    assert queried - exported == set(), f"the dashboard queries metrics the server does not export: {queried - exported}"
    missing = {what: name for what, name in REQUIRED_METRICS.items() if name not in queried}
    assert not missing, f"no panel shows {missing}"


def test_metric_name_extraction_sees_through_promql():
    expr = ('histogram_quantile(0.95, sum by (le, source) (rate(greenlane_request_seconds_bucket{job="x"}[5m])))'
            ' / ignoring(source) greenlan_typo_total')
    assert metric_names(expr) == {"greenlane_request_seconds_bucket", "greenlan_typo_total"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus missing: make system-deps")
def test_dashboard_queries_return_data_in_a_real_prometheus(tmp_path):
    """Every panel's PromQL is parsed and evaluated by Prometheus itself, scraping the server's metrics module."""
    from prometheus_client import start_http_server

    metrics = served_metrics()
    exporter_port, prom_port = _free_port(), _free_port()
    server, thread = start_http_server(exporter_port, addr="127.0.0.1", registry=metrics.registry)
    # the production file's job, pointed at this exporter and scraped every second
    cfg = yaml.safe_load(PROMETHEUS_YML.read_text())
    [job] = [j for j in cfg["scrape_configs"] if j["job_name"] == "greenlane-serve"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{exporter_port}"]}]
    cfg.update({"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": [job]})
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    log = open(tmp_path / "prometheus.log", "w")
    proc = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{prom_port}/api/v1/query?query="
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until a first scrape landed
            try:
                if _get(api + urllib.parse.quote('up{job="greenlane-serve"} == 1'))["data"]["result"]:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("Prometheus never scraped the exporter:\n" + (tmp_path / "prometheus.log").read_text()[-2000:])
        for _ in range(4):  # more traffic between scrapes, so every rate() has an increase to see
            metrics.served(prompt_tokens=12, completion_tokens=8, ttft_s=0.05, total_s=0.3)
            metrics.cache_lookup(hit=True)
            metrics.cache_lookup(hit=False)
            metrics.runtime_call(size=3, generated_tokens=8)
            metrics.request("/v1/chat/completions", 200)
            metrics.energy.labels(**metrics.base, source="estimate:test").inc(2.0)
            metrics.carbon.labels(**metrics.base, source="estimate:test").inc(2e-4)
            metrics.overhead.labels(**metrics.base).inc(0.001)
            time.sleep(1.2)
        empty = []
        for expr in dashboard_exprs():
            # Grafana's $__rate_interval: at least 4 scrape intervals
            answer = _get(api + urllib.parse.quote(expr.replace("$__rate_interval", "10s")))
            assert answer["status"] == "success", (expr, answer)
            if not answer["data"]["result"]:
                empty.append(expr)
        assert not empty, f"queries with no data: {empty}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        server.shutdown()
