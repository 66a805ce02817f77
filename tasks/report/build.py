"""The fleet report: one self-contained HTML file (PNG plots inlined as base64, no scripts, no network).

Sections, each an element with a stable id so tests and links can find them: `variants` (the table),
`pareto`, `carbon`, `energy-models`, `whatif`, `routing`. A section whose data the run lacks (no energy
grid, no champion) still appears and says why it is empty, so a reader never wonders whether it was
forgotten. The plots are also written as PNG files beside the HTML, for MLflow.
"""

from __future__ import annotations

import base64
import html
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from tasks.errors import GreenlaneError
from tasks.report import plots
from tasks.report.collect import candidate_records, energy_fits
from tasks.routing import candidates as cand_mod
from tasks.routing import evaluate, workload as wl

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f0f0f0}td.l{text-align:left;max-width:320px;overflow-wrap:anywhere}.wide{overflow-x:auto}tr.fail td{color:#a33}.note{color:#555;font-size:13px}
img{max-width:100%;border:1px solid #eee}section{margin-bottom:2.5em}.warn{color:#a33;font-weight:600}"""


def _e(value) -> str:
    return html.escape(str(value))


def _num(value, fmt: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt) if isinstance(value, (int, float)) else _e(value)


def _img(png: Path, alt: str) -> str:
    data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _table(head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    out = ["<div class='wide'><table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(row) + "</tr>")
    return "\n".join(out) + "</table></div>"


def _td(value, left: bool = False) -> str:
    return f'<td class="l">{value}</td>' if left else f"<td>{value}</td>"


def _failed_gates(decision: dict) -> dict[tuple[str, str], list[str]]:
    out = {}
    for target, d in plots.decisions_by_target(decision).items():
        for v in d.get("verdicts", []):
            out[(v["variant"], target)] = [g["gate"] for g in v.get("gates", []) if not g["passed"]]
    return out


def variants_section(records: list[dict], decision: dict) -> str:
    failed = _failed_gates(decision)
    head = ["target", "variant", "chain", "energy J/1k tok", "± 95% CI", "energy source", "gCO2e/1k tok",
            "operational", "embodied", "p50 ms", "p95 ms", "accuracy", "gates"]
    rows, classes = [], []
    for r in sorted(records, key=lambda r: (r["target"], r.get("gco2e_per_1k_tokens") or math.inf)):
        gates = failed.get((r["variant"], r["target"]))
        verdict = "-" if gates is None else ("pass" if not gates else "FAIL " + ", ".join(gates))
        rows.append([_td(_e(r["target"]), True), _td(_e(r["variant"]) + (" &#9733; champion" if r.get("champion") else ""), True),
                     _td(_e(r.get("chain", "")), True), _td(_num(r.get("energy_j_per_1k_tokens"), ".1f")),
                     _td(_num(r.get("energy_j_per_1k_tokens_ci95"), ".1f")), _td(_e(r.get("energy_source")), True),
                     _td(_num(r.get("gco2e_per_1k_tokens"))), _td(_num(r.get("gco2e_operational_per_1k_tokens"))),
                     _td(_num(r.get("gco2e_embodied_per_1k_tokens"))), _td(_num(r.get("latency_p50_ms"), ".0f")),
                     _td(_num(r.get("latency_p95_ms"), ".0f")), _td(_num(r.get("accuracy"), ".3f")), _td(_e(verdict), True)])
        classes.append("fail" if gates else "")
    reasons = "".join(f"<li>{_e(t)}: {_e(d.get('reason', ''))}</li>" for t, d in plots.decisions_by_target(decision).items())
    return _table(head, rows, classes) + f"<ul class='note'>{reasons}</ul><p class='note'>{_e(plots.source_note(records))}</p>"


def whatif_section(decision: dict) -> str:
    parts = []
    for target, entry in decision.get("targets", {}).items():
        rows = entry.get("whatif") or []
        if not rows:
            parts.append(f"<p class='note'>target {_e(target)}: no champion, so no placement to price.</p>")
            continue
        head = ["#", "region", "hour", "CI g/kWh", "operational g/1k", "embodied g/1k", "total g/1k", "embodied %", "energy source"]
        body = [[_td(r["rank"]), _td(_e(r["region"]), True), _td(_num(r.get("hour"))), _td(_num(r["ci_g_per_kwh"], ".1f")),
                 _td(_num(r["gco2e_operational_per_1k_tokens"])), _td(_num(r["gco2e_embodied_per_1k_tokens"])),
                 _td(_num(r["gco2e_per_1k_tokens"])), _td(_num(r["embodied_share"], ".1%")), _td(_e(r["energy_source"]), True)]
                for r in rows]
        champion = plots.decisions_by_target(decision).get(target, {}).get("champion")
        parts.append(f"<h3>target {_e(target)}: champion {_e(champion)} placed elsewhere</h3>" + _table(head, body))
    return "\n".join(parts) or "<p class='note'>no targets in this run's decision.</p>"


def report_workload(cands: list[cand_mod.Candidate], n: int = 2000, seed: int = 0) -> wl.Workload:
    """A synthetic workload inside every candidate's fitted (tin, tout) range, so the curves interpolate.

    The default medians of tasks.routing.workload.synthetic would push small benchmark grids far into
    extrapolation; here the medians sit at the geometric middle of the common fitted range.
    """
    tin_lo = max(c.energy.tin_range[0] for c in cands)
    tin_hi = min(c.energy.tin_range[1] for c in cands)
    tout_lo = max(c.energy.tout_range[0] for c in cands)
    tout_hi = min(c.energy.tout_range[1] for c in cands)
    if tin_lo > tin_hi or tout_lo > tout_hi:  # disjoint grids: no common range, use the union's middle
        tin_lo, tin_hi, tout_lo, tout_hi = min(tin_lo, tin_hi), max(tin_lo, tin_hi), min(tout_lo, tout_hi), max(tout_lo, tout_hi)
    rng = np.random.default_rng(seed)
    tin = np.clip(np.round(rng.lognormal(np.log(math.sqrt(tin_lo * tin_hi)), 0.6, n)), tin_lo, tin_hi)
    tout = np.clip(np.round(rng.lognormal(np.log(math.sqrt(tout_lo * tout_hi)), 0.6, n)), tout_lo, tout_hi)
    return wl.make(tin, tout, f"synthetic(n={n}, seed={seed}) within tin [{tin_lo}, {tin_hi}], tout [{tout_lo}, {tout_hi}]")


def routing_section(records: list[dict], out_dir: Path, workload: wl.Workload | None, objective: str) -> tuple[str, list[Path]]:
    cands = cand_mod.from_run_records(candidate_records(records))
    if not cands:
        return ("<p class='note'>no routing candidates: no passing variant has an energy model. Set "
                "<code>benchmark.energy_grid</code> (e.g. <code>{tin: [16, 64, 256, 512], tout: [8, 32, 128]}</code>) "
                "so each benchmark fits E(tin, tout).</p>", [])
    work = workload or report_workload(cands)
    curve = evaluate.tradeoff(work, cands, objective=objective)
    png = plots.routing_curves_plot(curve, out_dir / "routing_curves.png")
    key = "total_gco2e" if objective == "carbon" else "total_energy_j"
    head = ["zeta", "total energy J", "total gCO2e", "mean runtime s", "mean accuracy"] + [c.name for c in cands]
    fmt = lambda p: [_td(_num(p[key2])) for key2 in ("total_energy_j", "total_gco2e", "mean_runtime_s", "mean_accuracy")]
    rows = [[_td(f"{p['zeta']:.2f}")] + fmt(p) + [_td(f"{p['shares'][c.name]:.0%}") for c in cands] for p in curve["curve"]]
    rows += [[_td(_e(name), True)] + fmt(b) + [_td(f"{b['shares'][c.name]:.0%}") for c in cands]
             for name, b in curve["baselines"].items()]
    outside = cand_mod.extrapolated(cands, work.tin, work.tout)
    warn = ""
    if max(outside.values()) > 0:
        warn = ("<p class='warn'>extrapolation: queries outside a candidate's fitted token range: "
                + ", ".join(f"{k} {v:.0%}" for k, v in outside.items()) + "</p>")
    text = (f"<p class='note'>workload: {_e(work.source)}; objective: {_e(objective)} ({key}); candidates: the "
            f"passing variants with an energy model. Figures are predictions of the fitted models.</p>{warn}"
            + _img(png, "routing curves") + _table(head, rows))
    return text, [png]


def build(collected: dict, out_dir: Path, workload: wl.Workload | None = None, objective: str = "energy") -> dict:
    """Write report.html and its PNGs under `out_dir`; returns {html, pngs}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run, decision, records = collected["run"], collected["decision"], collected["records"]
    if not records:
        raise GreenlaneError(f"run {run['run_id']} has no benchmark results in its decision.json; nothing to report")
    pngs = [plots.pareto_plot(records, decision, out_dir / "pareto.png"),
            plots.carbon_breakdown_plot(records, out_dir / "carbon_breakdown.png")]
    sections = {
        "variants": ("Variants", variants_section(records, decision)),
        "pareto": ("Pareto frontier per target", _img(pngs[0], "Pareto frontier")),
        "carbon": ("Carbon breakdown", _img(pngs[1], "carbon breakdown")),
    }
    fits = energy_fits(records)
    if fits:
        pngs.append(plots.energy_fit_plot(fits, out_dir / "energy_model_fits.png"))
        rows = [[_td(_e(f["name"]), True), _td(_e(f["form"]), True), _td(_e(f["weighting"]), True), _td(f["n_points"]),
                 _td(_num(f["r2"], ".4f")), _td(_num(f["cv_mdape"], ".1%")), _td(_num(f["runtime_cv_mdape"], ".1%")),
                 _td(_e(f["energy_source"]), True)] for f in fits]
        body = _table(["variant@target", "form", "weights", "cells", "R^2", "CV MdAPE", "runtime CV MdAPE", "energy source"],
                      rows) + _img(pngs[-1], "energy model fits")
    else:
        body = "<p class='note'>no energy-model fits in this run: set <code>benchmark.energy_grid</code> to sweep a token grid.</p>"
    sections["energy-models"] = ("Energy models E(tin, tout) vs measurements", body)
    sections["whatif"] = ("What-if placement of the champion", whatif_section(decision))
    routing_html, routing_pngs = routing_section(records, out_dir, workload, objective)
    pngs += routing_pngs
    sections["routing"] = ("Routing across variants: trade-off over zeta", routing_html)

    when = datetime.fromtimestamp(run["start_time"] / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(f'<section id="{sid}"><h2>{_e(title)}</h2>\n{content}</section>'
                     for sid, (title, content) in sections.items())
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>greenlane fleet report</title>"
            f"<style>{CSS}</style></head><body><h1>greenlane fleet report</h1>"
            f"<p class='note'>pipeline run {_e(run['run_name'])} ({_e(run['run_id'])}), started {when}, "
            f"registered model {_e(decision.get('registered_model'))}</p>\n{body}</body></html>\n")
    out = out_dir / "report.html"
    out.write_text(page)
    return {"html": out, "pngs": pngs}
