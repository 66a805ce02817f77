"""The fleet report's figures, as functions of plain records (lists of dicts) that write one PNG each.

The records are the benchmark records the pipeline already has: the `results` list of decision.json
(one dict per variant x target with `variant`, `target`, `accuracy`, `gco2e_per_1k_tokens`,
`gco2e_operational_per_1k_tokens`, `gco2e_embodied_per_1k_tokens`, `energy_source`). So the promote step
can call `pareto_plot(results, summary, png)` and `carbon_breakdown_plot(results, png)` on what it holds,
and the report calls them on what it read back from MLflow, and both draw the same picture.

Every figure that shows energy or carbon says where the joules came from in a footnote; when measured
and estimated energy share a figure the footnote says so in capitals and estimated points are drawn
hollow / hatched, because comparing the two silently would be comparing a meter with a model.
"""

from __future__ import annotations

from pathlib import Path

from tasks.errors import GreenlaneError

COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def is_estimate(source: str | None) -> bool:
    return not source or str(source).startswith("estimate:")


def source_note(records: list[dict], key: str = "energy_source") -> str:
    """One line naming the energy source(s) behind a figure, flagging a mix of measured and estimated."""
    sources = sorted({str(r.get(key) or "unknown") for r in records})
    kinds = {is_estimate(s) for s in sources}
    if len(kinds) > 1:
        return f"MIXED energy sources: {', '.join(sources)} (hollow/hatched = estimate; not like for like)"
    return f"energy source: {', '.join(sources)}"


def decisions_by_target(decision: dict | None) -> dict[str, dict]:
    """{target: decision dict} from a decision.json summary, a {target: decision} map, or one Decision dict."""
    if not decision:
        return {}
    if "targets" in decision:
        return {t: e.get("decision", e) for t, e in decision["targets"].items()}
    if "target" in decision and "verdicts" in decision:
        return {decision["target"]: decision}
    return dict(decision)


def verdicts(decision: dict | None) -> tuple[dict[tuple[str, str], bool], dict[str, str | None]]:
    """({(variant, target): passed}, {target: champion}) from any form decisions_by_target accepts."""
    by_target = decisions_by_target(decision)
    passed = {(v["variant"], t): bool(v["passed"]) for t, d in by_target.items() for v in d.get("verdicts", [])}
    return passed, {t: d.get("champion") for t, d in by_target.items()}


def _save(fig, out_png) -> Path:
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    _plt().close(fig)
    return out_png


def _footnote(fig, text: str) -> None:
    fig.text(0.01, 0.01, text, fontsize=7.5, color="#444444", ha="left", va="bottom")


def pareto_plot(records: list[dict], decision: dict | None, out_png: Path) -> Path:
    """gCO2e per 1k tokens vs accuracy, one panel per target: the frontier, pass/fail, the champion.

    `decision` is decision.json's summary (or {target: Decision.to_dict()}); None draws every point as
    not judged. Passing variants are circles, failing ones crosses, the champion a gold star; the dashed
    line joins the variants no other beats on both carbon and accuracy (the Pareto frontier).
    """
    rows = [r for r in records if r.get("gco2e_per_1k_tokens") is not None and r.get("accuracy") is not None]
    if not rows:
        raise GreenlaneError("nothing to plot: no record has both gco2e_per_1k_tokens and accuracy")
    passed, champions = verdicts(decision)
    mixed = len({is_estimate(r.get("energy_source")) for r in rows}) > 1
    targets = list(dict.fromkeys(r["target"] for r in rows))
    plt = _plt()
    fig, axes = plt.subplots(1, len(targets), figsize=(5.5 * len(targets), 4.4), squeeze=False)
    for ax, target in zip(axes[0], targets, strict=True):
        pts = sorted((r for r in rows if r["target"] == target), key=lambda r: (r["gco2e_per_1k_tokens"], -r["accuracy"]))
        frontier, best = [], -1.0
        for r in pts:  # lowest carbon first: a point is on the frontier if it beats every cheaper one on accuracy
            if r["accuracy"] > best:
                frontier.append(r)
                best = r["accuracy"]
        ax.plot([r["gco2e_per_1k_tokens"] for r in frontier], [r["accuracy"] for r in frontier], "--",
                color="#999999", lw=1, label="Pareto frontier")
        for r in pts:
            ok = passed.get((r["variant"], target))
            est = is_estimate(r.get("energy_source"))
            hollow = est and mixed  # only a mix needs telling apart; the footnote names the source either way
            x, y = r["gco2e_per_1k_tokens"], r["accuracy"]
            if ok is False:
                ax.scatter(x, y, marker="x", color="#c44e52", s=50, zorder=3)
            else:
                ax.scatter(x, y, marker="o", s=50, zorder=3, edgecolors="#4c72b0",
                           facecolors="none" if hollow else "#4c72b0")
            if champions.get(target) == r["variant"]:
                ax.scatter(x, y, marker="*", s=260, color="#f2b701", edgecolors="black", zorder=4)
            ax.annotate(r["variant"] + (" (est.)" if est else ""), (x, y), textcoords="offset points",
                        xytext=(5, 5), fontsize=8)
        ax.scatter([], [], marker="o", color="#4c72b0", label="passes gates")
        ax.scatter([], [], marker="x", color="#c44e52", label="fails a gate")
        ax.scatter([], [], marker="*", s=120, color="#f2b701", edgecolors="black", label="champion")
        ax.set_xlabel("gCO2e per 1k tokens (operational + embodied)")
        ax.set_ylabel("task accuracy")
        ax.set_title(f"target {target}")
        ax.legend(fontsize=7, loc="best")
        ax.margins(0.15)
    _footnote(fig, source_note(rows))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, out_png)


def carbon_breakdown_plot(records: list[dict], out_png: Path) -> Path:
    """Stacked bars of operational and embodied gCO2e per 1k tokens for every variant@target.

    Bars are labelled with the total and the embodied share (the embodied sliver is often too thin to
    see); estimated energy is hatched.
    """
    keys = ("gco2e_operational_per_1k_tokens", "gco2e_embodied_per_1k_tokens")
    rows = [r for r in records if all(r.get(k) is not None for k in keys)]
    if not rows:
        raise GreenlaneError("nothing to plot: no record has operational and embodied carbon")
    rows = sorted(rows, key=lambda r: (r["target"], -(r[keys[0]] + r[keys[1]])))
    labels = [f"{r['variant']}@{r['target']}" for r in rows]
    op, em = [r[keys[0]] for r in rows], [r[keys[1]] for r in rows]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.8))
    bars_op = ax.barh(labels, op, color="#4c72b0", label="operational (energy x PUE x grid)")
    bars_em = ax.barh(labels, em, left=op, color="#dd8452", label="embodied (busy time / lifetime x manufacturing)")
    for bars in (bars_op, bars_em):
        for bar, r in zip(bars, rows, strict=True):
            bar.set_hatch("//" if is_estimate(r.get("energy_source")) else "")
    for y, (o, e) in enumerate(zip(op, em, strict=True)):
        ax.text(o + e, y, f" {o + e:.3g} g ({e / (o + e) if o + e else 0:.0%} emb.)", va="center", fontsize=8)
    ax.set_xlim(0, max(o + e for o, e in zip(op, em, strict=True)) * 1.4 or 1)
    ax.set_xlabel("gCO2e per 1k tokens")
    ax.set_title("Carbon per 1k tokens: operational vs embodied (hatched: estimated energy)")
    ax.legend(fontsize=7, loc="upper right")  # the smallest totals are at the top
    _footnote(fig, source_note(rows))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, out_png)


def energy_fit_plot(fits: list[dict], out_png: Path) -> Path:
    """Predicted vs measured joules per request, one colour per variant@target, log-log with y = x.

    Each fit is {name, measured_j: [...], predicted_j: [...], form, cv_mdape, energy_source}: the
    token-grid cells a benchmark measured and what its fitted E(tin, tout) says for the same cells.
    """
    fits = [f for f in fits if f.get("measured_j")]
    if not fits:
        raise GreenlaneError("nothing to plot: no energy-model fit with measured grid cells")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    lo, hi = float("inf"), 0.0
    for i, f in enumerate(fits):
        meas, pred = f["measured_j"], f["predicted_j"]
        lo, hi = min(lo, *meas, *pred), max(hi, *meas, *pred)
        ax.scatter(meas, pred, s=22, color=COLORS[i % len(COLORS)],
                   label=f"{f['name']}: {f['form']}, CV MdAPE {f['cv_mdape']:.1%}")
    lo = max(lo, 1e-9)
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, label="prediction = measurement")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured energy per request (J)")
    ax.set_ylabel("E(tin, tout) prediction (J)")
    ax.set_title("Energy models vs the token-grid measurements")
    ax.legend(fontsize=7, loc="upper left")
    _footnote(fig, source_note(fits))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, out_png)


def routing_curves_plot(tradeoff: dict, out_png: Path) -> Path:
    """Energy (or carbon), mean runtime and mean accuracy of the routed workload vs zeta, with baselines.

    `tradeoff` is tasks.routing.evaluate.tradeoff's result. Round-robin and random are dashed lines, each
    single-model deployment a dotted one: where the curve sits below them is what routing buys.
    """
    curve = tradeoff.get("curve") or []
    if not curve:
        raise GreenlaneError("nothing to plot: the trade-off has no points")
    carbon = tradeoff.get("objective") == "carbon"
    panels = [("total_gco2e" if carbon else "total_energy_j", "total gCO2e" if carbon else "total energy (J)"),
              ("mean_runtime_s", "mean runtime per query (s)"), ("mean_accuracy", "mean accuracy")]
    zetas = [p["zeta"] for p in curve]
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for ax, (key, label) in zip(axes, panels, strict=True):
        ax.plot(zetas, [p[key] for p in curve], "o-", color="black", lw=1.5, label="optimal routing")
        for i, (name, base) in enumerate(tradeoff.get("baselines", {}).items()):
            style = ":" if name.startswith("single:") else "--"
            ax.axhline(base[key], ls=style, lw=1, color=COLORS[i % len(COLORS)], label=name)
        ax.set_xlabel("zeta (0: accuracy only, 1: " + ("carbon" if carbon else "energy") + " only)")
        ax.set_ylabel(label)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="center right")  # beside the panels: one line per candidate
    n = tradeoff.get("workload", {}).get("queries", "?")
    fig.suptitle(f"Routing {n} queries: the trade-off over zeta (predicted by the energy models)")
    srcs = [{"energy_source": s} for s in tradeoff.get("energy_sources", {}).values()]
    _footnote(fig, source_note(srcs) if srcs else "energy source: unknown")
    fig.tight_layout(rect=(0, 0.05, 0.86, 0.95))
    return _save(fig, out_png)
