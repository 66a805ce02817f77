"""How much does running an energy meter slow the work it measures?

Times a fixed CPU workload (pure Python, so it holds the GIL: the worst case
for a meter's polling thread) with no meter and with each meter running, in
interleaved pairs so drift on a shared machine hits both alike, and prints the
median of the per-pair ratios. On a busy machine that ratio is noisy, so it
also prints the CPU time the meter's own threads used as a fraction of the work
(a direct cost, unaffected by other load) and the fixed start()+stop() cost,
which matters for short windows. Prints figures; asserts nothing.

Meters whose hardware is absent are run against the recorded sysfs trees in
tests/fixtures/sysfs (marked `fixture`): file reads and thread wake-ups cost the
same, only the values are fake. NVML needs a GPU and is skipped without one.

    .venv/bin/python benchmarks/meter_overhead.py [--seconds 1.0] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tasks.measurement.meters import jetson, make_meter, nvml, rapl

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "sysfs"


def workload(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def calibrate(seconds: float) -> int:
    """Iterations of `workload` that take about `seconds` here."""
    n = 100_000
    while True:
        t = time.perf_counter()
        workload(n)
        elapsed = time.perf_counter() - t
        if elapsed > 0.2:
            return int(n * seconds / elapsed)
        n *= 2


def candidates(tmp: Path) -> list[tuple[str, str, dict]]:
    """(label, meter name, kwargs) for every meter that can run here."""
    out = [
        ("estimate", "estimate", {}),
        ("codecarbon (1 s sampling)", "codecarbon", {"output_dir": tmp / "codecarbon"}),
    ]
    if nvml.available():
        out.append(("nvml", "nvml", {}))
    if rapl.available():
        out.append(("rapl (poll 5 s)", "rapl", {}))
    else:
        out.append(("rapl fixture (poll 5 s)", "rapl", {"sysfs_root": FIXTURES / "rapl-server"}))
        out.append(("rapl fixture (poll 10 ms)", "rapl", {"sysfs_root": FIXTURES / "rapl-server", "poll_s": 0.01}))
    if jetson.available():
        out.append(("jetson (poll 100 ms)", "jetson", {}))
    else:
        root = FIXTURES / "jetson-agx-orin"
        out.append(("jetson fixture (poll 100 ms)", "jetson", {"sysfs_root": root}))
        out.append(("jetson fixture (poll 10 ms)", "jetson", {"sysfs_root": root, "poll_s": 0.01}))
    return out


def timed(n: int, meter=None) -> tuple[float, float, float]:
    """(workload wall s, meter start+stop wall s, CPU s used by threads other than this one)."""
    cpu0, own0 = time.process_time(), time.thread_time()
    t0 = time.perf_counter()
    if meter is not None:
        meter.start()
    t1 = time.perf_counter()
    workload(n)
    t2 = time.perf_counter()
    if meter is not None:
        meter.stop()
    t3 = time.perf_counter()
    # the meter's polling thread: process CPU minus this thread's (a direct cost, immune to machine noise)
    other_cpu_s = (time.process_time() - cpu0) - (time.thread_time() - own0)
    return t2 - t1, (t1 - t0) + (t3 - t2), other_cpu_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one workload run")
    parser.add_argument("--repeats", type=int, default=9, help="interleaved (bare, metered) pairs per meter")
    args = parser.parse_args()

    n = calibrate(args.seconds)
    print(f"workload: {n:,} iterations (~{args.seconds:g} s), {args.repeats} interleaved pairs per meter")
    print(f"{'meter':<30} {'bare s':>7} {'metered s':>9} {'ratio':>6} {'start+stop s':>12} {'meter CPU':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, kwargs in candidates(Path(tmp)):
            ratios, bare, metered, fixed, cpu = [], [], [], [], []
            for _ in range(args.repeats):
                bare.append(timed(n)[0])
                work_s, fixed_s, cpu_s = timed(n, make_meter(name, **kwargs))
                metered.append(work_s)
                ratios.append(work_s / bare[-1])
                fixed.append(fixed_s)
                cpu.append(max(0.0, cpu_s) / work_s)  # timer granularity can make ~0 slightly negative
            med = statistics.median
            print(
                f"{label:<30} {med(bare):>7.3f} {med(metered):>9.3f} {med(ratios):>6.3f} "
                f"{med(fixed):>12.4f} {med(cpu):>8.3%}"
            )


if __name__ == "__main__":
    main()
