"""The steps of the `greenlane_optimize` DAG, one function per task.

Tasks pass a small JSON context (paths, the MLflow experiment and parent run
ids) and variant names, never models. Every step writes to a path derived
from the DAG run id and overwrites what a previous attempt left there, so a
retried or cleared task does not duplicate anything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
from pathlib import Path

from tasks.config import REPO_ROOT, GreenlaneConfig, config_from_dict, greenlane_home, load_config

log = logging.getLogger("greenlane")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", name)


def load_ctx_config(ctx: dict) -> GreenlaneConfig:
    return config_from_dict(json.loads(Path(ctx["config_file"]).read_text()), origin=ctx["config_file"])


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def data_version() -> str:
    """sha256 (first 12 hex) over the shipped task data, so a run says which data it was judged on."""
    digest = hashlib.sha256()
    data = REPO_ROOT / "tasks" / "data"
    for path in sorted(p for p in data.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".txt", ".csv")):
        digest.update(path.relative_to(data).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def prepare(config_path: str | None, overrides: dict | list | None, dag_run_id: str) -> dict:
    """Validate the config, cache the base model, create the experiment and the parent run."""
    from tasks.models import model_name, resolve_base
    from tasks.tracking import runs

    cfg = load_config(config_path, overrides)
    home = greenlane_home()
    run_dir = home / "runs" / _safe(dag_run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file = run_dir / "config.json"
    config_file.write_text(json.dumps(cfg.model_dump(mode="json"), indent=2))
    log.info("preparing base model %s", cfg.base_model)
    base_dir = resolve_base(cfg.base_model, home / "cache")
    from tasks.variants import check_variant

    for spec in cfg.variants:  # before anything is built: e.g. an architecture an export step's converter lacks
        check_variant(base_dir, spec)

    name = model_name(cfg.base_model)
    tracking_uri = cfg.tracking_uri()
    experiment_id = runs.ensure_experiment(
        tracking_uri, cfg.mlflow.experiment or f"greenlane-{name}", artifact_location=(home / "mlartifacts").as_uri()
    )
    parent = runs.ensure_run(
        tracking_uri, experiment_id, key=dag_run_id, run_name=f"optimize {dag_run_id}",
        tags={"greenlane.dag_run_id": dag_run_id, "git_commit": git_commit(), "data_sha256": data_version(),
              "base_model": cfg.base_model},
    )
    runs.log_record(
        tracking_uri, parent, metrics={},
        params={"base_model": cfg.base_model, "variants": ",".join(v.name for v in cfg.variants),
                "targets": ",".join(cfg.targets), "gates": cfg.gates.model_dump_json()},
        tags={},
    )
    runs.log_json(tracking_uri, parent, cfg.model_dump(mode="json"), "config.json")
    return {
        "dag_run_id": dag_run_id,
        "config_file": str(config_file),
        "run_dir": str(run_dir),
        "base_dir": str(base_dir),
        "tracking_uri": tracking_uri,
        "experiment_id": experiment_id,
        "parent_run_id": parent,
        "registered_model": cfg.mlflow.registered_model or name,
    }


def plan(ctx: dict) -> list[str]:
    """The variant names to build, in config order."""
    return [v.name for v in load_ctx_config(ctx).variants]


def plan_benchmarks(ctx: dict) -> list[dict]:
    """One benchmark per variant x target, in a shuffled order (seeded by the config's seed and the DAG run):
    benchmarks of one machine run one after another, so a slow drift (heat, a neighbour's load) would
    otherwise always favour the variants listed first."""
    import random

    cfg = load_ctx_config(ctx)
    # A variant runs only where its runtime is served; the others are listed as skipped on the decision record.
    jobs = [{"variant": v.name, "target": t} for v in cfg.variants for t in cfg.targets if not cfg.skip_reason(v.name, t)]
    random.Random(f"{cfg.seed}/{ctx['dag_run_id']}").shuffle(jobs)
    return jobs


def make_variant(ctx: dict, variant: str) -> str:
    from tasks.variants import build_variant

    cfg = load_ctx_config(ctx)
    out = Path(ctx["run_dir"]) / "variants" / _safe(variant)
    log.info("building variant %s", variant)
    meta = build_variant(Path(ctx["base_dir"]), cfg.variant(variant), out, base_model=cfg.base_model)
    log.info("variant %s: %s, %.1f MB", variant, meta["chain_str"], meta["size_mb"])
    return str(out)


def benchmark(ctx: dict, variant: str, target: str) -> str:
    """Benchmark, add carbon, log the child run, register the version; returns the result file."""
    from tasks.carbon.accounting import per_1k_tokens
    from tasks.measurement.benchmark import run_benchmark
    from tasks.tracking import registry, runs, serving

    cfg = load_ctx_config(ctx)
    tcfg = cfg.targets[target]
    variant_dir = Path(ctx["run_dir"]) / "variants" / _safe(variant)
    out_dir = Path(ctx["run_dir"]) / "results" / _safe(f"{variant}@{target}")
    log.info("benchmarking %s@%s", variant, target)
    (out_dir / "result.json").unlink(missing_ok=True)  # a cleared task that then fails must leave no stale result
    uri, parent = ctx["tracking_uri"], ctx["parent_run_id"]
    run_id = runs.ensure_run(
        uri, ctx["experiment_id"], key=f"{ctx['dag_run_id']}/{variant}@{target}", run_name=f"{variant}@{target}",
        tags={runs.PARENT_TAG: parent, "variant": variant, "target": target},
    )
    try:
        with runs.system_metrics(uri, run_id):  # CPU/memory (and GPU) of the machine over the benchmark, in the UI
            record = run_benchmark(variant_dir, target, tcfg, cfg.benchmark, cfg.eval, out_dir,
                                   reference_dir=Path(ctx["base_dir"]),
                                   reference_cache=Path(ctx["run_dir"]) / "fidelity-reference.npz", seed=cfg.seed)
    except BaseException:
        runs.finish(uri, run_id, "FAILED")  # a retry reopens the same run (found by its key)
        raise
    from tasks.orchestration import worker_report

    # What this worker really is (hostname, CPU, GPUs, profile) is the record; the config's claim is kept beside it.
    machine = worker_report()
    profile = machine["detected_profile"] or tcfg.hardware
    record["hardware"].update(machine, profile_used=profile,
                              profile_from="detected" if machine["detected_profile"] else "config (nothing detected)")
    if machine["detected_profile"] and machine["detected_profile"] != tcfg.hardware:
        log.warning("target %s is configured as %r but worker %s is %r (%s); embodied carbon uses %r", target,
                    tcfg.hardware, machine["worker"], profile, machine["detected_evidence"], profile)
    carbon = per_1k_tokens(
        energy_j_per_1k_tokens=record["energy_j_per_1k_tokens"],
        busy_s_per_1k_tokens=record["busy_s_per_1k_tokens"],
        energy_source=record["energy_source"],
        region=tcfg.region,
        hardware=profile,
        pue=tcfg.pue,
        lifetime_years=tcfg.lifetime_years,
        energy_usd_per_kwh=tcfg.energy_usd_per_kwh,
        instance_usd_per_hour=tcfg.instance_usd_per_hour,
    )
    record.update(carbon.to_metrics())
    record["carbon"] = carbon.to_dict()

    from tasks.variants import read_metadata

    meta = read_metadata(variant_dir)
    params = {"chain": meta["chain_str"], "runtime": record["runtime"], "device": record["device"],
              "base_model": cfg.base_model, "region": tcfg.region,
              "pue": tcfg.pue, "hardware_profile": profile, "hardware_profile_configured": tcfg.hardware}
    for i, step in enumerate(meta["chain"]):
        params.update({f"step{i}.{k}": v for k, v in {"method": step["method"], **step["params"]}.items()})
    runs.log_record(
        uri, run_id, metrics=runs.metrics_of(record), params=params,
        tags={"energy_source": record["energy_source"], "runtime": record["runtime"], "device": record["device"],
              "energy_kind": "measured" if record["energy_measured"] else "estimate",
              "hardware": record["hardware"]["processor"], "region": tcfg.region,
              "hardware_profile_detected": machine["detected_profile"] or "unknown",
              "worker": machine["worker"], "worker_hostname": machine["hostname"], "queue": tcfg.queue,
              "gpus": ", ".join(machine["gpus"]) or "none"},
    )
    runs.log_json(uri, run_id, record, "benchmark.json")
    runs.log_json(uri, run_id, record["samples"], "samples.json")  # what each variant actually says
    for artifact in ("emissions.csv", "energy_model.json", "energy_grid.csv"):  # the last two: benchmark.energy_grid
        if (out_dir / artifact).is_file():
            runs.client(uri).log_artifact(run_id, str(out_dir / artifact))
    serving.log_servable(uri, run_id, variant_dir, "model")
    record["run_id"] = run_id
    record["model_version"] = registry.register_variant(uri, ctx["registered_model"], run_id, variant)
    runs.finish(uri, run_id)
    result_file = out_dir / "result.json"
    result_file.write_text(json.dumps(record, indent=2, default=str))
    log.info("%s@%s: %.4g gCO2e/1k tokens (%s), accuracy %.3f, p95 %.0f ms", variant, target,
             record["gco2e_per_1k_tokens"], record["energy_source"], record["accuracy"], record["latency_p95_ms"])
    return str(result_file)


def promote(ctx: dict, result_files: list[str]) -> dict:
    """Decide per target and move the aliases of the winners; returns the summary written to decision.json."""
    from tasks import promotion
    from tasks.tracking import registry, runs

    cfg = load_ctx_config(ctx)
    results = [json.loads(Path(f).read_text()) for f in result_files if f and Path(f).is_file()]
    summary = {"dag_run_id": ctx["dag_run_id"], "registered_model": ctx["registered_model"],
               "experiment_id": ctx["experiment_id"], "targets": {}}
    for target in cfg.targets:
        skipped = {v.name: why for v in cfg.variants if (why := cfg.skip_reason(v.name, target))}
        decision = promotion.decide(results, cfg.gates_for(target), target,
                                    expected=[v.name for v in cfg.variants if v.name not in skipped], skipped=skipped)
        entry = {"decision": decision.to_dict(), "promoted": None}
        log_verdicts(ctx, decision, results)
        if decision.champion is not None:
            record = next(r for r in results if r["variant"] == decision.champion and r["target"] == target)
            entry["promoted"] = registry.promote(
                ctx["tracking_uri"], ctx["registered_model"], target, record["model_version"],
                is_default=(target == cfg.default_target), decision_note=decision.reason,
            )
            entry["whatif"] = whatif_for_champion(ctx, cfg, target, record)
        log.info("target %s: %s", target, decision.reason)
        summary["targets"][target] = entry
    summary["results"] = [{k: v for k, v in r.items() if k not in ("correct", "samples")} for r in results]
    decision_file = Path(ctx["run_dir"]) / "decision.json"
    decision_file.write_text(json.dumps(summary, indent=2, default=str))
    runs.log_json(ctx["tracking_uri"], ctx["parent_run_id"], summary, "decision.json")
    log_decision_plots(ctx, summary)
    record_md = promotion.decision_markdown(summary)
    (Path(ctx["run_dir"]) / "decision.md").write_text(record_md)
    runs.client(ctx["tracking_uri"]).log_text(ctx["parent_run_id"], record_md, "decision.md")
    # The parent run's description in the MLflow UI is the decision record itself.
    runs.log_record(ctx["tracking_uri"], ctx["parent_run_id"], metrics={}, params={},
                    tags={"mlflow.note.content": record_md})
    runs.finish(ctx["tracking_uri"], ctx["parent_run_id"])
    return {t: e["decision"]["champion"] for t, e in summary["targets"].items()}


def log_decision_plots(ctx: dict, summary: dict) -> None:
    """The Pareto frontier (carbon vs accuracy, pass/fail, champion) and the carbon breakdown, on the parent run."""
    from tasks.report import plots
    from tasks.tracking import runs

    out = Path(ctx["run_dir"]) / "plots"
    out.mkdir(exist_ok=True)
    if summary["results"]:
        plots.pareto_plot(summary["results"], summary, out / "pareto.png")
        plots.carbon_breakdown_plot(summary["results"], out / "carbon_breakdown.png")
        runs.log_dir(ctx["tracking_uri"], ctx["parent_run_id"], out, "plots")


def log_verdicts(ctx: dict, decision, results: list[dict]) -> None:
    """On each variant's run: the accuracy drop vs the baseline with its 95% bounds, and the gate outcome."""
    from tasks.tracking import runs

    run_ids = {r["variant"]: r.get("run_id") for r in results if r["target"] == decision.target}
    for verdict in decision.verdicts:
        if not run_ids.get(verdict.variant):
            continue
        failed = [g.gate for g in verdict.gates if not g.passed]
        outcome = "champion" if verdict.variant == decision.champion else "passed" if verdict.passed else "failed"
        runs.log_record(ctx["tracking_uri"], run_ids[verdict.variant], metrics=verdict.accuracy_drop, params={},
                        tags={"gate": outcome, "gate.failed": ",".join(failed) or "none"})


def whatif_for_champion(ctx: dict, cfg: GreenlaneConfig, target: str, record: dict) -> list[dict]:
    """Rank regions (and hours) for the champion's measured cost of 1k tokens; log table and plot."""
    from tasks.carbon import whatif
    from tasks.tracking import runs

    tcfg = cfg.targets[target]
    option = whatif.Option(target=target, hardware=tcfg.hardware, energy_j_per_1k_tokens=record["energy_j_per_1k_tokens"],
                           busy_s_per_1k_tokens=record["busy_s_per_1k_tokens"], energy_source=record["energy_source"])
    regions = list(dict.fromkeys([*cfg.carbon.whatif_regions, tcfg.region]))
    rows = whatif.rank([option], regions, cfg.carbon.hours_csv, pue=tcfg.pue, lifetime_years=tcfg.lifetime_years)
    out = Path(ctx["run_dir"]) / f"whatif-{_safe(target)}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "whatif.txt").write_text(whatif.format_table(rows) + "\n")
    whatif.plot(rows, out / "whatif.png")
    runs.log_dir(ctx["tracking_uri"], ctx["parent_run_id"], out, f"whatif/{target}")
    return [r.to_dict() for r in rows]
