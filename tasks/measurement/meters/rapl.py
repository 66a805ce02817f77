"""CPU package and DRAM energy from Linux powercap (Intel RAPL; AMD exposes the same tree).

Each zone `/sys/class/powercap/intel-rapl:<socket>[:<sub>]` has a `name`
(`package-0`, `dram`, `core`, `uncore`, `psys`) and a cumulative `energy_uj`
counter that wraps at `max_energy_range_uj`. We sum package + dram: `core` and
`uncore` are inside the package, and `psys` (platform) overlaps everything, so
adding them would double count. `intel-rapl-mmio:*` zones are skipped for the
same reason (they repeat the package domain through another interface).

A counter can wrap more than once in a long window (262 kJ range / 300 W is
~15 minutes), so a background thread reads the counters every `poll_s` and
accumulates deltas; each delta then holds at most one wrap.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tasks.errors import GreenlaneError
from tasks.measurement.energy import EnergyReading

SUMMED_KINDS = ("package", "dram")


@dataclass
class _Zone:
    label: str  # `package-0`, `dram-0` (dram zones are all named `dram`; the socket makes them unique)
    kind: str
    energy_path: Path
    max_range_uj: int
    last_uj: int = 0
    total_uj: int = 0
    wraps: int = 0

    def read_uj(self) -> int:
        return int(self.energy_path.read_text())

    def advance(self) -> None:
        now = self.read_uj()
        delta = now - self.last_uj
        if delta < 0:  # the counter passed max_energy_range_uj and restarted from 0
            delta += self.max_range_uj
            self.wraps += 1
        self.total_uj += delta
        self.last_uj = now


def find_zones(sysfs_root: str | Path = "/sys") -> list[_Zone]:
    """Package and DRAM zones under `<sysfs_root>/class/powercap`, sorted by label."""
    zones = []
    for zone_dir in sorted(Path(sysfs_root, "class", "powercap").glob("intel-rapl:*")):
        name_file = zone_dir / "name"
        if not name_file.is_file():
            continue
        name = name_file.read_text().strip()
        kind = name.split("-")[0]
        if kind not in SUMMED_KINDS:
            continue
        socket = zone_dir.name.split(":")[1]
        label = name if kind == "package" else f"{kind}-{socket}"
        max_range = int((zone_dir / "max_energy_range_uj").read_text())
        zones.append(_Zone(label, kind, zone_dir / "energy_uj", max_range))
    return sorted(zones, key=lambda z: z.label)


def available(sysfs_root: str | Path = "/sys") -> bool:
    """True when RAPL zones exist and their counters are readable by this user."""
    try:
        zones = find_zones(sysfs_root)
        for zone in zones:
            zone.read_uj()
    except (OSError, ValueError):
        return False
    return bool(zones)


class RaplMeter:
    name = "rapl"

    def __init__(
        self,
        sysfs_root: str | Path = "/sys",
        poll_s: float | None = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`poll_s=None` disables the background reads (tests call `poll()` by hand)."""
        self.sysfs_root = Path(sysfs_root)
        self.poll_s = poll_s
        self.clock = clock
        self.zones = find_zones(self.sysfs_root)
        if not self.zones:
            raise GreenlaneError(
                f"no RAPL package/dram zones under {self.sysfs_root}/class/powercap; "
                "this CPU or kernel does not expose powercap: choose another energy meter"
            )
        try:
            for zone in self.zones:
                zone.read_uj()
        except PermissionError:
            raise GreenlaneError(
                f"{self.zones[0].energy_path} is not readable: since Linux 5.10 energy_uj is root-only "
                "(CVE-2020-8694); grant read access (e.g. a udev rule or chmod o+r) or choose another meter"
            ) from None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0: float | None = None

    def poll(self) -> None:
        """Fold the counters' progress since the last read into the totals."""
        with self._lock:
            for zone in self.zones:
                zone.advance()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll()

    def start(self) -> None:
        for zone in self.zones:
            zone.last_uj, zone.total_uj, zone.wraps = zone.read_uj(), 0, 0
        self._t0 = self.clock()
        if self.poll_s:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="greenlane-rapl-poll", daemon=True)
            self._thread.start()

    def stop(self) -> EnergyReading:
        if self._t0 is None:
            raise RuntimeError("RaplMeter.stop() called before start()")
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self.poll()
        duration_s = self.clock() - self._t0
        self._t0 = None
        details: dict = {f"{zone.label}_j": zone.total_uj / 1e6 for zone in self.zones}
        for kind in SUMMED_KINDS:
            details[f"{kind}_j"] = sum(z.total_uj for z in self.zones if z.kind == kind) / 1e6
        details["counter_wraps"] = sum(zone.wraps for zone in self.zones)
        return EnergyReading(
            energy_j=sum(zone.total_uj for zone in self.zones) / 1e6,
            duration_s=duration_s,
            source="rapl",
            details=details,
        )
