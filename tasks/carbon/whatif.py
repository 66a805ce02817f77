"""What-if placement: where (and when) would the measured work emit least?

Given each target's measured energy and busy time per 1k tokens, `rank` prices every (target,
region) pair, and every (target, hour of day) when an hourly intensity CSV is given, and orders
them by total gCO2e per 1k tokens, keeping the operational/embodied split. Each row carries the
energy's `energy_source`; `mixed_sources(rows)` tells when measured and estimated energy share a
table, which `format_table` then states under the table instead of letting them mix silently.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from tasks.carbon import accounting
from tasks.carbon import regions as grid
from tasks.errors import GreenlaneError

DEFAULT_REGIONS = ("QC", "CISO", "PACE")


@dataclass(frozen=True)
class Option:
    """One target's measured cost of 1k tokens: what the benchmark recorded there."""

    target: str
    hardware: str
    """Hardware profile name (see `greenlane carbon --list`)."""
    energy_j_per_1k_tokens: float
    busy_s_per_1k_tokens: float
    energy_source: str
    """`nvml`, `rapl`, `jetson-ina3221`, ... or `estimate:<how>`."""

    @classmethod
    def from_dict(cls, raw: dict, where: str = "option") -> "Option":
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if raw.get(n) in (None, "")]
        if missing:
            raise GreenlaneError(f"{where}: missing {', '.join(missing)}; each option needs {', '.join(names)}")
        try:
            return cls(
                target=str(raw["target"]),
                hardware=str(raw["hardware"]),
                energy_j_per_1k_tokens=float(raw["energy_j_per_1k_tokens"]),
                busy_s_per_1k_tokens=float(raw["busy_s_per_1k_tokens"]),
                energy_source=str(raw["energy_source"]),
            )
        except (ValueError, TypeError) as err:  # TypeError: a JSON list or object where a number belongs
            raise GreenlaneError(f"{where}: {err}") from None


def read_options(path: str | Path) -> list[Option]:
    """Options from a JSON list of objects or a CSV with a header of Option's field names."""
    path = Path(path)
    if not path.is_file():
        raise GreenlaneError(f"options file {str(path)!r} does not exist")
    try:  # utf-8 and csv.Error: a binary file fails with one line, not a traceback
        if path.suffix.lower() == ".json":
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise GreenlaneError(f"{path}: not valid JSON ({err})") from None
            if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
                raise GreenlaneError(f"{path}: expected a JSON list of option objects")
            return [Option.from_dict(r, f"{path}[{i}]") for i, r in enumerate(raw)]
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                return [Option.from_dict(r, f"{path}:{i}") for i, r in enumerate(csv.DictReader(f), start=2)]
    except (UnicodeDecodeError, csv.Error) as err:
        raise GreenlaneError(f"{path} is not UTF-8 text ({type(err).__name__}: {err})") from None
    raise GreenlaneError(f"{path}: options file must end in .json or .csv")


@dataclass(frozen=True)
class Row:
    rank: int
    target: str
    hardware: str
    region: str
    hour: int | None
    ci_g_per_kwh: float
    gco2e_operational_per_1k_tokens: float
    gco2e_embodied_per_1k_tokens: float
    gco2e_per_1k_tokens: float
    embodied_share: float
    energy_j_per_1k_tokens: float
    busy_s_per_1k_tokens: float
    energy_source: str
    measured: bool

    def to_dict(self) -> dict:
        return asdict(self)


def rank(
    options: list[Option],
    regions: list[str] | tuple[str, ...] = DEFAULT_REGIONS,
    hours_csv: str | Path | None = None,
    hours_label: str | None = None,
    pue: float = 1.0,
    lifetime_years: float = 5.0,
) -> list[Row]:
    """Every (option, region) and (option, hour of `hours_csv`) pair, lowest total carbon first."""
    if not options:
        raise GreenlaneError("what-if needs at least one option (target, hardware, energy and time per 1k tokens)")
    places: list[tuple[grid.Intensity, int | None]] = [(grid.lookup(r), None) for r in regions]
    if hours_csv is not None:
        places += [(ci, h) for h, ci in grid.hourly_intensities(hours_csv, hours_label).items()]
    if not places:
        raise GreenlaneError("what-if needs at least one region or an hourly CSV")
    priced = []
    for opt in options:
        for ci, hour in places:
            b = accounting.per_1k_tokens(
                opt.energy_j_per_1k_tokens,
                opt.busy_s_per_1k_tokens,
                opt.energy_source,
                ci,
                opt.hardware,
                pue=pue,
                lifetime_years=lifetime_years,
            )
            priced.append((opt, hour, b))
    # ties broken by name so the order is reproducible
    priced.sort(key=lambda p: (p[2].gco2e_per_1k_tokens, p[0].target, p[2].region))
    return [
        Row(
            rank=i,
            target=opt.target,
            hardware=b.hardware,
            region=b.region,
            hour=hour,
            ci_g_per_kwh=b.ci_g_per_kwh,
            gco2e_operational_per_1k_tokens=b.gco2e_operational_per_1k_tokens,
            gco2e_embodied_per_1k_tokens=b.gco2e_embodied_per_1k_tokens,
            gco2e_per_1k_tokens=b.gco2e_per_1k_tokens,
            embodied_share=b.embodied_share,
            energy_j_per_1k_tokens=b.energy_j_per_1k_tokens,
            busy_s_per_1k_tokens=b.busy_s_per_1k_tokens,
            energy_source=b.energy_source,
            measured=b.measured,
        )
        for i, (opt, hour, b) in enumerate(priced, start=1)
    ]


def mixed_sources(rows: list[Row]) -> bool:
    """True when the table holds both measured and estimated energy."""
    return len({r.measured for r in rows}) > 1


def format_table(rows: list[Row]) -> str:
    head = (
        f"{'#':>3} {'target':<18} {'hardware':<16} {'region':<12} {'CI g/kWh':>8} "
        f"{'op g/1k':>10} {'emb g/1k':>10} {'total g/1k':>10} {'emb%':>5}  energy source"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.rank:>3} {r.target:<18} {r.hardware:<16} {r.region:<12} {r.ci_g_per_kwh:>8.1f} "
            f"{r.gco2e_operational_per_1k_tokens:>10.4g} {r.gco2e_embodied_per_1k_tokens:>10.4g} "
            f"{r.gco2e_per_1k_tokens:>10.4g} {r.embodied_share:>5.1%}  {r.energy_source}"
        )
    if mixed_sources(rows):
        lines.append(
            "note: this table mixes measured and estimated energy (see `energy source`); "
            "compare rows across the two kinds with care"
        )
    return "\n".join(lines)


def plot(rows: list[Row], path: str | Path, top: int | None = 20) -> Path:
    """Stacked bars (operational + embodied per 1k tokens) for the `top` rows, best at the top; a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    shown = list(rows[:top] if top else rows)
    if not shown:
        raise GreenlaneError("nothing to plot: no what-if rows")
    labels = [f"{r.target} / {r.region}" + ("" if r.measured else " (est.)") for r in shown][::-1]
    op = [r.gco2e_operational_per_1k_tokens for r in shown][::-1]
    em = [r.gco2e_embodied_per_1k_tokens for r in shown][::-1]
    hatch = ["" if r.measured else "//" for r in shown][::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(shown) + 1.5))
    bars_op = ax.barh(labels, op, color="#4c72b0", label="operational")
    bars_em = ax.barh(labels, em, left=op, color="#dd8452", label="embodied")
    for bars in (bars_op, bars_em):
        for bar, h in zip(bars, hatch, strict=True):
            bar.set_hatch(h)
    for y, (o, e) in enumerate(zip(op, em, strict=True)):  # the embodied sliver is often too thin to see: say it
        ax.text(o + e, y, f" {o + e:.3g} g ({e / (o + e) if o + e else 0:.1%} emb.)", va="center", fontsize=8)
    ax.set_xlim(0, max(o + e for o, e in zip(op, em, strict=True)) * 1.35 or 1)
    ax.set_xlabel("gCO2e per 1k tokens")
    ax.set_title("What-if placement (hatched: estimated energy)")
    ax.legend(loc="upper right")  # best rows, the shortest bars, are at the top
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
