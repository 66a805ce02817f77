"""`greenlane run`: the greenlane_optimize DAG, in-process, with a progress display and a summary."""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path

from tasks.commands import add_config_args
from tasks.errors import Cancelled, GreenlaneError, NoChampion


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run the greenlane_optimize DAG in-process (Airflow dag.test) and print the summary")
    add_config_args(p)
    p.set_defaults(func=handle)


def _cancel_before_start(signum, frame):
    raise Cancelled(signum, f"cancelled: {signal.Signals(signum).name} before the DAG started; nothing ran")


def handle(args) -> int:
    from rich.console import Console

    from tasks.config import check_store_writable, greenlane_home, load_config, parse_overrides
    from tasks.models import resolve_base
    from tasks.recovery import home_lock
    from tasks.runner import run_dag, show_progress

    console = Console(stderr=True, soft_wrap=True, width=150)  # width: logs and CI are not terminals
    t0 = time.monotonic()
    for sig in (signal.SIGTERM, signal.SIGINT):  # before Airflow starts there is nothing to clean up
        signal.signal(sig, _cancel_before_start)
    # Validate everything cheap before starting Airflow, so bad input fails in a second with one line.
    cfg = load_config(args.config, args.overrides)
    from tasks.tracking.outage import apply_http_budget

    apply_http_budget(cfg.mlflow)  # MLflow's retry budget here (cancel clean-up), in the DAG's child and its tasks
    check_store_writable(cfg.tracking_uri())  # a run writes there: fail now, not in a task minutes later
    overrides = parse_overrides(args.overrides)
    show_progress(t0)
    progress = logging.getLogger("greenlane")
    if cfg.base_model.startswith("bundled:"):  # dequantized once, which takes a while: say so
        progress.info("preparing base model %s", cfg.base_model)
    # One run per home for the whole run, preparing the model included: a second exits 2 at once (tasks/recovery.py)
    with home_lock(greenlane_home()):
        base_dir = resolve_base(cfg.base_model, greenlane_home() / "cache")
        from tasks.variants import check_variant

        for spec in cfg.variants:  # e.g. an architecture an export step's converter does not know, before Airflow starts
            check_variant(base_dir, spec)
        # only now: bad input, the model directory included, fails with its one line and nothing before it
        progress.info("config ok: %d variants x %d targets, base model %s", len(cfg.variants), len(cfg.targets), cfg.base_model)

        progress.info("starting Airflow DAG greenlane_optimize (dag.test, SQLite metadata under %s)", greenlane_home() / "airflow")
        conf = {"config_path": str(Path(args.config).resolve()) if args.config else None, "overrides": overrides}
        # SIGTERM/SIGINT from here on stop the run, fail it and close its MLflow runs (Cancelled: exit 143/130)
        run_id, state = run_dag("greenlane_optimize", conf, progress_t0=t0)
    for sig in (signal.SIGTERM, signal.SIGINT):  # the run is over: a signal now just ends the summary
        signal.signal(sig, signal.SIG_DFL)
    from tasks.config import run_dir

    decision_file = run_dir(run_id) / "decision.json"
    if state != "success" or not decision_file.is_file():
        from tasks.runner import run_log

        raise GreenlaneError(f"DAG run {run_id} ended {state}; its log, every task's traceback included: {run_log(run_id)}")
    summary = json.loads(decision_file.read_text())
    print_summary(console, summary, time.monotonic() - t0)
    if all(t["decision"]["champion"] is None for t in summary["targets"].values()):
        raise NoChampion("no variant passed the gates on any target; nothing was promoted")
    return 0


def print_summary(console, summary: dict, elapsed_s: float) -> None:
    from rich.table import Table

    from tasks.config import greenlane_home
    from tasks.measurement.record import BenchmarkRecord

    records = [BenchmarkRecord.from_dict(r) for r in summary["results"]]
    for target, entry in summary["targets"].items():
        verdicts = {v["variant"]: v for v in entry["decision"]["verdicts"]}
        # every record in decision.json has its carbon part: the pipeline adds it before promotion
        rows = sorted((r for r in records if r.target == target), key=lambda r: r.carbon.gco2e_per_1k_tokens)
        base = next((r for r in rows if r.variant == "baseline"), None)
        table = Table(title=f"target {target}")
        for col in ("variant", "runtime", "J/1k tok", "energy source", "tok/J vs baseline", "gCO2e/1k tok",
                    "p50 / p95 ms", "accuracy [95% CI]", "top-1 agr.", "gates"):
            table.add_column(col, justify="left" if col in ("variant", "runtime", "energy source", "gates") else "right")
        for r in rows:
            v = verdicts.get(r.variant)
            failed = [g["gate"] for g in v["gates"] if not g["passed"]] if v else ["?"]
            star = " *" if r.variant == entry["decision"]["champion"] else ""
            energy, lat, q = r.energy, r.latency, r.quality
            ratio = f"{base.energy.energy_j_per_1k_tokens / energy.energy_j_per_1k_tokens:.2f}x" if base else "n/a"
            top1 = "n/a" if r.fidelity.top1_agreement is None else f"{r.fidelity.top1_agreement:.3f}"
            table.add_row(
                r.variant + star, r.runtime, f"{energy.energy_j_per_1k_tokens:.1f}",
                energy.energy_source, ratio, f"{r.carbon.gco2e_per_1k_tokens:.4f}",
                f"{lat.latency_p50_ms:.0f} / {lat.latency_p95_ms:.0f}",
                f"{q.accuracy:.2f} [{q.accuracy_ci95_lo:.2f}, {q.accuracy_ci95_hi:.2f}]", top1,
                "pass" if not failed else "FAIL " + ",".join(failed),
            )
        for variant, why in (entry["decision"].get("skipped") or {}).items():
            table.add_row(variant, "", "", "", "", "", "", "", "", f"skipped: {why}")
        console.print(table)
        promoted = entry["promoted"]
        if promoted:
            console.print(f"[bold green]{target}:[/] {entry['decision']['reason']}; "
                          f"{summary['registered_model']}@{promoted['alias']} -> version {promoted['version']}")
        else:
            console.print(f"[bold red]{target}:[/] {entry['decision']['reason']}")
    home = greenlane_home()
    console.print(f"done in {elapsed_s / 60:.1f} min. MLflow UI:  "
                  f"mlflow ui --backend-store-uri sqlite:///{home / 'mlflow.db'} --host 127.0.0.1 --port 5000  "
                  f"then open http://127.0.0.1:5000")
