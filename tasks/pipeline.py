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
import subprocess
from pathlib import Path

from tasks.config import (REPO_ROOT, GreenlaneConfig, check_store_writable, greenlane_home, load_config,
                          load_ctx_config, run_dir, safe_name)
from tasks.tracking.outage import apply_http_budget, tracking_errors

log = logging.getLogger("greenlane")


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


@tracking_errors
def prepare(config_path: str | None, overrides: dict | list | None, dag_run_id: str) -> dict:
    """Validate the config, cache the base model, create the experiment and the parent run."""
    from tasks.models import resolve_base
    from tasks.tracking import runs
    from tasks.tracking.queries import experiment_location, registry_location

    cfg = load_config(config_path, overrides)
    apply_http_budget(cfg.mlflow)
    check_store_writable(cfg.tracking_uri())
    home = greenlane_home()
    out = run_dir(dag_run_id)
    out.mkdir(parents=True, exist_ok=True)
    config_file = out / "config.json"
    config_file.write_text(json.dumps(cfg.model_dump(mode="json"), indent=2))
    log.info("preparing base model %s", cfg.base_model)
    base_dir = resolve_base(cfg.base_model, home / "cache")
    from tasks.variants import check_variant

    for spec in cfg.variants:  # before anything is built: e.g. an architecture an export step's converter lacks
        check_variant(base_dir, spec)

    tracking_uri, experiment = experiment_location(cfg)
    experiment_id = runs.ensure_experiment(tracking_uri, experiment, artifact_location=(home / "mlartifacts").as_uri())
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
        "run_dir": str(out),
        "base_dir": str(base_dir),
        "tracking_uri": tracking_uri,
        "experiment_id": experiment_id,
        "parent_run_id": parent,
        "registered_model": registry_location(cfg)[1],
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
    out = Path(ctx["run_dir"]) / "variants" / safe_name(variant)
    log.info("building variant %s", variant)
    meta = build_variant(Path(ctx["base_dir"]), cfg.variant(variant), out, base_model=cfg.base_model, task=cfg.eval.task)
    log.info("variant %s: %s, %.1f MB", variant, meta["chain_str"], meta["size_mb"])
    return str(out)


@tracking_errors
def benchmark(ctx: dict, variant: str, target: str) -> str:
    """Benchmark, add carbon, log the child run and its servable model; returns the result file.

    The record is saved before the first MLflow write: a try that fails on the tracking server leaves it for
    the retry, which logs it without measuring again (tasks/saved_record.py). The model version is registered
    by `promote`, once the gates have judged the variant."""
    from dataclasses import replace

    from tasks import saved_record
    from tasks.carbon.accounting import per_1k_tokens
    from tasks.measurement.benchmark import run_benchmark
    from tasks.tracking import runs, serving

    cfg = load_ctx_config(ctx)
    apply_http_budget(cfg.mlflow)
    tcfg = cfg.targets[target]
    variant_dir = Path(ctx["run_dir"]) / "variants" / safe_name(variant)
    out_dir = Path(ctx["run_dir"]) / "results" / safe_name(f"{variant}@{target}")
    ident = saved_record.identity(ctx["dag_run_id"], variant, target, variant_dir)
    saved = saved_record.reusable(out_dir, ident)  # before result.json goes: its absence says "unfinished"
    log.info("benchmarking %s@%s", variant, target)
    (out_dir / "result.json").unlink(missing_ok=True)  # a cleared task that then fails must leave no stale result
    uri, parent = ctx["tracking_uri"], ctx["parent_run_id"]
    run_id = runs.ensure_run(
        uri, ctx["experiment_id"], key=f"{ctx['dag_run_id']}/{variant}@{target}", run_name=f"{variant}@{target}",
        tags={runs.PARENT_TAG: parent, "variant": variant, "target": target},
    )
    if saved is not None:
        record = saved
        log.info("%s@%s: reusing the record an earlier try of this DAG run measured (%s); logging it without "
                 "measuring again", variant, target, out_dir / saved_record.RECORD_FILE)
    else:
        try:
            with runs.system_metrics(uri, run_id):  # CPU/memory (and GPU) of the machine over the benchmark, in the UI
                record = run_benchmark(variant_dir, target, tcfg, cfg.benchmark, cfg.eval, out_dir,
                                       reference_dir=Path(ctx["base_dir"]),
                                       reference_cache=Path(ctx["run_dir"]) / "fidelity-reference.npz", seed=cfg.seed)
                # On disk before any MLflow write that could lose it, the system-metrics monitor's closing
                # publish at the end of this block included.
                saved_record.save(out_dir, record, ident)
        except BaseException:
            runs.finish(uri, run_id, "FAILED")  # a retry reopens the same run (found by its key)
            raise
    from tasks.carbon.detect import worker_report

    # What this worker really is (hostname, CPU, GPUs, profile) is the record; the config's claim is kept beside it.
    machine = worker_report()
    profile = machine["detected_profile"] or tcfg.hardware
    hardware = replace(record.hardware, worker_report=machine, profile_used=profile,
                       profile_from="detected" if machine["detected_profile"] else "config (nothing detected)")
    if machine["detected_profile"] and machine["detected_profile"] != tcfg.hardware:
        log.warning("target %s is configured as %r but worker %s is %r (%s); embodied carbon uses %r", target,
                    tcfg.hardware, machine["worker"], profile, machine["detected_evidence"], profile)
    carbon = per_1k_tokens(
        energy_j_per_1k_tokens=record.energy.energy_j_per_1k_tokens,
        busy_s_per_1k_tokens=record.energy.busy_s_per_1k_tokens,
        energy_source=record.energy.energy_source,
        region=tcfg.region,
        hardware=profile,
        pue=tcfg.pue,
        lifetime_years=tcfg.lifetime_years,
        energy_usd_per_kwh=tcfg.energy_usd_per_kwh,
        instance_usd_per_hour=tcfg.instance_usd_per_hour,
    )
    record = replace(record, hardware=hardware, carbon=carbon, run_id=run_id)

    from tasks.variants import read_metadata

    meta = read_metadata(variant_dir)
    params = {"chain": meta["chain_str"], "runtime": record.runtime, "device": record.device,
              "base_model": cfg.base_model, "region": tcfg.region,
              "pue": tcfg.pue, "hardware_profile": profile, "hardware_profile_configured": tcfg.hardware}
    for i, step in enumerate(meta["chain"]):
        params.update({f"step{i}.{k}": v for k, v in {"method": step["method"], **step["params"]}.items()})
    runs.log_record(
        uri, run_id, metrics=record.metrics(), params=params,
        tags={"energy_source": record.energy.energy_source, "runtime": record.runtime, "device": record.device,
              "energy_kind": "measured" if record.energy.energy_measured else "estimate",
              "hardware": record.hardware.processor, "region": tcfg.region,
              "hardware_profile_detected": machine["detected_profile"] or "unknown",
              "worker": machine["worker"], "worker_hostname": machine["hostname"], "queue": tcfg.queue,
              "gpus": ", ".join(machine["gpus"]) or "none"},
    )
    runs.log_json(uri, run_id, record.to_dict(), "benchmark.json")
    runs.log_json(uri, run_id, record.samples, "samples.json")  # what each variant actually says
    for artifact in ("emissions.csv", "energy_model.json", "energy_grid.csv"):  # the last two: benchmark.energy_grid
        if (out_dir / artifact).is_file():
            runs.log_artifact_file(uri, run_id, out_dir / artifact)
    serving.log_servable(uri, run_id, variant_dir, "model")  # registered by `promote` if it passes a gate
    runs.finish(uri, run_id)
    result_file = out_dir / "result.json"
    result_file.write_text(json.dumps(record.to_dict(), indent=2, default=str))
    log.info("%s@%s: %.4g gCO2e/1k tokens (%s), accuracy %.3f, p95 %.0f ms", variant, target,
             carbon.gco2e_per_1k_tokens, record.energy.energy_source, record.quality.accuracy,
             record.latency.latency_p95_ms)
    return str(result_file)


@tracking_errors
def promote(ctx: dict, result_files: list[str]) -> dict:
    """Decide per target, register the passing variants, write the decision record, then move the aliases of the
    winners; returns {target: champion or None}.

    Promotion is the run's last act, and all or nothing: everything that can fail (the what-if inputs, the alias
    names, registering versions, reading the current champions, the decision record on disk and on the parent
    run) happens before the first alias moves, so a run that fails after deciding moves nothing. Versions are
    registered only for records that passed their target's gates (`mlflow.register_variants: all` registers
    every one); decision.json lists every record either way.
    """
    from tasks import promotion
    from tasks.measurement.record import BenchmarkRecord
    from tasks.tracking import registry, runs

    cfg = load_ctx_config(ctx)
    apply_http_budget(cfg.mlflow)
    try:
        records = [BenchmarkRecord.from_dict(json.loads(Path(f).read_text()))
                   for f in result_files if f and Path(f).is_file()]
        decisions = {}
        for target in cfg.targets:
            skipped = {v.name: why for v in cfg.variants if (why := cfg.skip_reason(v.name, target))}
            decisions[target] = promotion.decide(records, cfg.gates_for(target), target,
                                                 expected=[v.name for v in cfg.variants if v.name not in skipped],
                                                 skipped=skipped)
        champions = {t: next(r for r in records if r.variant == d.champion and r.target == t)
                     for t, d in decisions.items() if d.champion is not None}
        whatifs = {t: whatif_for_champion(ctx, cfg, t, r) for t, r in champions.items()}  # bad inputs fail here
        for target in champions:
            registry.check_alias(registry.alias_for(target))
        records = register_versions(ctx, cfg, records, decisions)
        versions = {(r.variant, r.target): r.model_version for r in records}
        moves = {t: {"alias": registry.alias_for(t), "version": versions[(r.variant, t)],
                     "previous": registry.current_champion(ctx["tracking_uri"], ctx["registered_model"], t)}
                 for t, r in champions.items()}
        summary = {"dag_run_id": ctx["dag_run_id"], "registered_model": ctx["registered_model"],
                   "experiment_id": ctx["experiment_id"], "targets": {}}
        for target, decision in decisions.items():
            log_verdicts(ctx, decision, records)
            summary["targets"][target] = {"decision": decision.to_dict(), "promoted": moves.get(target),
                                          **({"whatif": whatifs[target]} if target in whatifs else {})}
            log.info("target %s: %s", target, decision.reason)
        summary["results"] = [{k: v for k, v in r.to_dict().items() if k not in ("correct", "samples")}
                              for r in records]
        write_decision(ctx, summary)
    except BaseException:
        try:  # nothing moved; a retry reopens the run
            runs.finish(ctx["tracking_uri"], ctx["parent_run_id"], "FAILED")
        except Exception as err:  # the store may be what failed: the first error is the one to report
            log.warning("parent run %s not marked FAILED: %s", ctx["parent_run_id"], err)
        raise
    # The act, last: every check above has passed.
    for target, move in moves.items():
        registry.promote(ctx["tracking_uri"], ctx["registered_model"], target, move["version"],
                         is_default=(target == cfg.default_target), decision_note=decisions[target].reason)
    runs.finish(ctx["tracking_uri"], ctx["parent_run_id"])
    return {t: d.champion for t, d in decisions.items()}


def register_versions(ctx: dict, cfg: GreenlaneConfig, records: list, decisions: dict) -> list:
    """The records, with the model version of their run's servable for those that passed their target's gates
    (for all of them with `mlflow.register_variants: all`)."""
    from dataclasses import replace

    from tasks.tracking import registry

    passed = {(v.variant, d.target) for d in decisions.values() for v in d.verdicts if v.passed}
    out = []
    for r in records:
        if r.run_id and (cfg.mlflow.register_variants == "all" or (r.variant, r.target) in passed):
            r = replace(r, model_version=registry.register_variant(ctx["tracking_uri"], ctx["registered_model"],
                                                                   r.run_id, r.variant))
        out.append(r)
    return out


def write_decision(ctx: dict, summary: dict) -> None:
    """decision.json and decision.md in the run directory and on the parent run (its description), with the plots."""
    from tasks import promotion
    from tasks.tracking import runs

    decision_file = Path(ctx["run_dir"]) / "decision.json"
    decision_file.write_text(json.dumps(summary, indent=2, default=str))
    runs.log_json(ctx["tracking_uri"], ctx["parent_run_id"], summary, "decision.json")
    log_decision_plots(ctx, summary)
    run_ids = [r["run_id"] for r in summary["results"] if r.get("run_id")]
    record_md = promotion.decision_markdown(
        summary, runs.compare_runs_link(ctx["experiment_id"], run_ids) if run_ids else None)
    (Path(ctx["run_dir"]) / "decision.md").write_text(record_md)
    runs.log_text(ctx["tracking_uri"], ctx["parent_run_id"], record_md, "decision.md")
    # The parent run's description in the MLflow UI is the decision record itself.
    runs.set_description(ctx["tracking_uri"], ctx["parent_run_id"], record_md)


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


def log_verdicts(ctx: dict, decision, results: list) -> None:
    """On each variant's run: the accuracy drop vs the baseline with its 95% bounds, and the gate outcome."""
    from tasks.tracking import runs

    run_ids = {r.variant: r.run_id for r in results if r.target == decision.target}
    for verdict in decision.verdicts:
        if not run_ids.get(verdict.variant):
            continue
        failed = [g.gate for g in verdict.gates if not g.passed]
        outcome = "champion" if verdict.variant == decision.champion else "passed" if verdict.passed else "failed"
        runs.log_record(ctx["tracking_uri"], run_ids[verdict.variant], metrics=verdict.accuracy_drop, params={},
                        tags={"gate": outcome, "gate.failed": ",".join(failed) or "none"})


def whatif_for_champion(ctx: dict, cfg: GreenlaneConfig, target: str, record) -> list[dict]:
    """Rank regions (and hours) for the champion's measured cost of 1k tokens; log table and plot."""
    from tasks.carbon import whatif
    from tasks.tracking import runs

    tcfg = cfg.targets[target]
    energy = record.energy
    option = whatif.Option(target=target, hardware=tcfg.hardware, energy_j_per_1k_tokens=energy.energy_j_per_1k_tokens,
                           busy_s_per_1k_tokens=energy.busy_s_per_1k_tokens, energy_source=energy.energy_source)
    regions = list(dict.fromkeys([*cfg.carbon.whatif_regions, tcfg.region]))
    rows = whatif.rank([option], regions, cfg.carbon.hours_csv, pue=tcfg.pue, lifetime_years=tcfg.lifetime_years)
    out = Path(ctx["run_dir"]) / f"whatif-{safe_name(target)}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "whatif.txt").write_text(whatif.format_table(rows) + "\n")
    whatif.plot(rows, out / "whatif.png")
    runs.log_dir(ctx["tracking_uri"], ctx["parent_run_id"], out, f"whatif/{target}")
    return [r.to_dict() for r in rows]


def result_files(ctx: dict) -> list[str]:
    """The result files the benchmarks of this DAG run wrote (a failed or skipped one wrote none)."""
    return sorted(str(p) for p in (Path(ctx["run_dir"]) / "results").glob("*/result.json"))


def promote_available(ctx: dict) -> dict:
    """Promote per target from whatever results exist; a target without its baseline result moves nothing."""
    return promote(ctx, result_files(ctx))


def check_complete(ctx: dict) -> dict[str, str]:
    """Raise if a served target is missing results (a benchmark failed); returns the unserved targets."""
    from tasks.errors import GreenlaneError
    from tasks.orchestration import unserved_targets

    unserved = unserved_targets(ctx)
    have = {Path(f).parent.name for f in result_files(ctx)}
    missing = [f"{j['variant']}@{j['target']}" for j in plan_benchmarks(ctx)
               if j["target"] not in unserved and safe_name(f"{j['variant']}@{j['target']}") not in have]
    for target, why in unserved.items():
        log.warning("target %s was not benchmarked: %s", target, why)
    if missing:
        raise GreenlaneError(f"no result for {', '.join(missing)}: those benchmarks failed (see their task logs); "
                             f"the other targets were promoted")
    return unserved
