"""`greenlane carbon` (what-if calculator, profiles and regions) and `greenlane whatif` (placement ranking)."""

from __future__ import annotations

import argparse
import json

from tasks.commands import add_config_args


def add_parser(subparsers) -> None:
    carbon = subparsers.add_parser(
        "carbon",
        help="operational + embodied carbon of energy used for some seconds on a hardware profile",
        description="C_op = E x PUE x CI; C_em = (t / lifetime) x C_hw. No benchmark needed.",
    )
    carbon.add_argument("--energy-kwh", type=float, help="energy the device drew, kWh")
    carbon.add_argument("--seconds", type=float, help="time the hardware was busy, seconds")
    carbon.add_argument("--region", help="grid code (QC, CISO, PACE) or country ISO-3 code (CAN, USA, ...)")
    carbon.add_argument("--hardware", help="hardware profile (t4, rtx6000-ada, a100, h100, ...) or `auto` to detect")
    carbon.add_argument("--pue", type=float, default=1.0, help="power usage effectiveness, >= 1 (default 1.0)")
    carbon.add_argument("--lifetime-years", type=float, default=5.0, help="hardware lifetime (default 5)")
    carbon.add_argument("--hours-csv", help="hourly intensity CSV (timestamp,gco2e_per_kwh); use with --hour")
    carbon.add_argument("--hour", type=int, help="hour of day 0-23 to take from --hours-csv")
    carbon.add_argument("--json", action="store_true", help="print the result as one JSON object")
    carbon.add_argument("--list", action="store_true", help="show hardware profiles and regions with their sources")
    carbon.add_argument("--countries", action="store_true", help="with --list: also list every country code")
    carbon.add_argument("--detect", action="store_true", help="show which profile this machine matches and why")
    carbon.set_defaults(func=run_carbon)

    whatif = subparsers.add_parser(
        "whatif",
        help="rank (target, region/hour) placements by carbon per 1k tokens",
        description=(
            "Give each target's measured cost of 1k tokens either as repeated --hardware/--energy-j-per-1k/"
            "--seconds-per-1k (one of each per target, in the same order) or as --options FILE (.json list or "
            ".csv with columns target,hardware,energy_j_per_1k_tokens,busy_s_per_1k_tokens,energy_source)."
        ),
    )
    whatif.add_argument("--options", help="JSON or CSV file of options")
    whatif.add_argument("--champion", action="store_true",
                        help="add each target's current champion from the MLflow registry (its measured energy and time)")
    add_config_args(whatif, "with --champion: naming the registry")
    whatif.add_argument("--hardware", action="append", default=[], help="hardware profile of a target (repeatable)")
    whatif.add_argument(
        "--energy-j-per-1k", type=float, action="append", default=[], help="joules per 1k tokens (repeatable)"
    )
    whatif.add_argument(
        "--seconds-per-1k", type=float, action="append", default=[], help="busy seconds per 1k tokens (repeatable)"
    )
    whatif.add_argument(
        "--energy-source",
        action="append",
        default=[],
        help="where the joules came from (nvml, rapl, estimate:...): once, or once per target "
        "(default estimate:user-input)",
    )
    whatif.add_argument("--target", action="append", default=[], help="target name (repeatable; default the hardware)")
    whatif.add_argument("--regions", default="QC,CISO,PACE", help="comma-separated regions (default QC,CISO,PACE)")
    whatif.add_argument("--hours-csv", help="also rank the hours of this hourly intensity CSV")
    whatif.add_argument("--hours-label", help="region label for the CSV's hours (default: the file name)")
    whatif.add_argument("--pue", type=float, default=1.0, help="power usage effectiveness, >= 1 (default 1.0)")
    whatif.add_argument("--lifetime-years", type=float, default=5.0, help="hardware lifetime (default 5)")
    whatif.add_argument("--top", type=int, help="show only the best N rows")
    whatif.add_argument("--plot", help="also write a PNG bar chart here")
    whatif.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    whatif.set_defaults(func=run_whatif)


def run_carbon(args: argparse.Namespace) -> int:
    from tasks.carbon import accounting, detect
    from tasks.errors import GreenlaneError

    if args.list:
        print(json.dumps(listing(args.countries), indent=2) if args.json else format_listing(args.countries))
        return 0
    if args.detect:
        found = detect.detect()
        if args.json:
            print(json.dumps({"hardware": found.hardware, "evidence": found.evidence}))
        else:
            print(f"{found.hardware or 'no profile'}: {found.evidence}")
        return 0 if found.hardware else 1
    missing = [
        f"--{n.replace('_', '-')}" for n in ("energy_kwh", "seconds", "region", "hardware") if getattr(args, n) is None
    ]
    if missing:
        raise GreenlaneError(f"carbon needs {', '.join(missing)} (or --list / --detect); see `greenlane carbon --help`")
    hardware = detect.detect_profile() if args.hardware == "auto" else args.hardware
    fp = accounting.footprint(
        args.energy_kwh, args.seconds, args.region, hardware, args.pue, args.lifetime_years, args.hour, args.hours_csv
    )
    if args.json:
        print(json.dumps(fp.to_json()))
        return 0
    print(f"operational {fp.operational_g:.6g} g + embodied {fp.embodied_g:.6g} g = {fp.total_g:.6g} gCO2e")
    print(f"  region {fp.region}: {fp.ci_g_per_kwh:g} g/kWh x PUE {fp.pue:g}  ({fp.ci_source})")
    print(f"  hardware {fp.hardware}: {fp.embodied_kg:.3g} kg over {fp.lifetime_years:g} years  ({fp.embodied_source})")
    return 0


def listing(countries: bool = False) -> dict:
    from tasks.carbon import hardware, regions

    out = {
        "hardware": [
            {
                "name": p.name,
                "display_name": p.display_name,
                "embodied_kg": round(p.embodied_kg, 3),
                "embodied_source": " ".join(p.embodied_source.split()),
                "act_kg": round(p.act_kg, 3),
                "tdp_w": p.tdp_w,
                "memory_gb": p.memory_gb,
                "source": p.source,
                "notes": " ".join(p.notes.split()),
            }
            for p in hardware.profiles().values()
        ],
        "grids": [vars(ci) for ci in regions.grids().values()],
        "countries_source": f"{regions.codecarbon_mix_path()} ({len(regions.countries())} ISO-3 codes)",
    }
    if countries:
        out["countries"] = [vars(ci) for ci in regions.countries().values()]
    return out


def format_listing(countries: bool = False) -> str:
    data = listing(countries)
    lines = ["Hardware profiles (embodied carbon, kgCO2e; ACT = the ACT-model figure from the recorded inputs)"]
    for p in data["hardware"]:
        lines.append(
            f"  {p['name']:<17} {p['embodied_kg']:>6.2f} kg  (ACT {p['act_kg']:.2f})  {p['tdp_w']:>4g} W  "
            f"{p['memory_gb']:>3g} GB  {p['display_name']}"
        )
        lines.append(f"  {'':<17} embodied: {p['embodied_source']}")
        lines.append(f"  {'':<17} specs: {p['source']}")
    lines.append("Grids (gCO2e/kWh)")
    for g in data["grids"]:
        lines.append(f"  {g['region']:<6} {g['gco2e_per_kwh']:>5g}  {g['name']}; source: {g['source']}")
    lines.append(f"Countries by ISO-3 code: {data['countries_source']}")
    if countries:
        for c in data["countries"]:
            lines.append(f"  {c['region']:<4} {c['gco2e_per_kwh']:>8.1f}  {c['name']}  ({c['source']})")
    else:
        lines.append("  add --countries to list them all")
    return "\n".join(lines)


def _flag_options(args: argparse.Namespace) -> list:
    from tasks.carbon.whatif import Option
    from tasks.errors import GreenlaneError

    n = len(args.hardware)
    counts = {
        "--hardware": n,
        "--energy-j-per-1k": len(args.energy_j_per_1k),
        "--seconds-per-1k": len(args.seconds_per_1k),
    }
    if len(set(counts.values())) != 1:
        given = ", ".join(f"{k} x{v}" for k, v in counts.items())
        raise GreenlaneError(
            f"whatif: give --hardware, --energy-j-per-1k and --seconds-per-1k once per target ({given})"
        )
    if len(args.energy_source) not in (0, 1, n):
        raise GreenlaneError(
            f"whatif: --energy-source given {len(args.energy_source)} times for {n} targets; "
            "give it once, or once per target"
        )
    if len(args.target) not in (0, n):
        raise GreenlaneError(
            f"whatif: --target given {len(args.target)} times for {n} targets; give it once per target"
        )
    sources = (
        args.energy_source * n if len(args.energy_source) == 1 else args.energy_source or ["estimate:user-input"] * n
    )
    targets = args.target or args.hardware
    return [
        Option.from_dict(
            {"target": t, "hardware": h, "energy_j_per_1k_tokens": e, "busy_s_per_1k_tokens": s, "energy_source": src},
            f"target {i + 1}",
        )
        for i, (t, h, e, s, src) in enumerate(
            zip(targets, args.hardware, args.energy_j_per_1k, args.seconds_per_1k, sources, strict=True)
        )
    ]


def run_whatif(args: argparse.Namespace) -> int:
    from tasks.carbon import whatif
    from tasks.errors import GreenlaneError

    options = whatif.read_options(args.options) if args.options else []
    options += _flag_options(args)
    if args.champion:
        options += _champion_options(args)
    if not options:
        raise GreenlaneError("whatif needs --options FILE or --hardware/--energy-j-per-1k/--seconds-per-1k per target")
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    if args.top is not None and args.top < 1:
        raise GreenlaneError(f"--top must be >= 1, got {args.top}")
    rows = whatif.rank(options, regions, args.hours_csv, args.hours_label, args.pue, args.lifetime_years)
    shown = rows[: args.top] if args.top else rows
    if args.plot:
        whatif.plot(shown, args.plot, top=None)
    if args.json:
        print(json.dumps([r.to_dict() for r in shown], indent=2))
    else:
        print(whatif.format_table(shown))
        if args.plot:
            print(f"plot: {args.plot}")
    return 0


def _champion_options(args: argparse.Namespace) -> list:
    """One what-if option per target that has a champion, from what its benchmark run logged."""
    from tasks.carbon import whatif
    from tasks.config import load_config
    from tasks.errors import GreenlaneError
    from tasks.tracking.queries import champion_report, registry_location

    cfg = load_config(args.config, args.overrides)
    uri, name = registry_location(cfg)
    options = []
    for target, tcfg in cfg.targets.items():
        info = champion_report(uri, name, target)
        if info is None:
            continue
        options.append(whatif.Option(
            target=f"{target}:{info['variant']}", hardware=tcfg.hardware,
            energy_j_per_1k_tokens=info["metrics"]["energy_j_per_1k_tokens"],
            busy_s_per_1k_tokens=info["metrics"]["busy_s_per_1k_tokens"],
            energy_source=info["energy_source"] or "unknown",
        ))
    if not options:
        raise GreenlaneError(f"no champion in registered model {name!r} at {uri}; run `greenlane run` first")
    return options
