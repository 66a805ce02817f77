"""NVIDIA Jetson module power from its INA3221 rail monitors, integrated over the window.

Two sysfs layouts exist in L4T:
- hwmon (Orin, JetPack 5/6; mainline `ina3221` driver): `/sys/class/hwmon/hwmonN/`
  with `name` = `ina3221`, per channel `inK_label`, `inK_input` (bus voltage, mV)
  and `currK_input` (mA); power = mV x mA.
- iio (Xavier/Nano/TX2, L4T 32; `ina3221x` driver): `/sys/bus/iio/devices/iio:deviceN/`
  with `rail_name_K` and `in_powerK_input` (mW).

The INA3221 reports power, not energy, so a thread samples every `poll_s` and
integrates (trapezoid rule). Which rails to add matters: on Orin Nano/NX and
Xavier NX `VDD_IN` is the whole module and the other rails are inside it, so
when a total rail exists it is used alone; otherwise (AGX Orin, AGX Xavier) the
rails are disjoint and are summed. `rails=[...]` overrides both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tasks.errors import GreenlaneError
from tasks.measurement.energy import EnergyReading
from tasks.measurement.meters._poll import PowerPoller

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")  # module input rails: everything else is a subset of them
UNCONNECTED = ("NC",)  # label of an unused INA3221 channel


@dataclass(frozen=True)
class Rail:
    label: str
    power_mw_path: Path | None = None  # iio: power in mW
    voltage_mv_path: Path | None = None  # hwmon: bus voltage in mV
    current_ma_path: Path | None = None  # hwmon: current in mA

    def power_w(self) -> float:
        if self.power_mw_path is not None:
            return int(self.power_mw_path.read_text()) / 1e3
        mv = int(self.voltage_mv_path.read_text())
        ma = int(self.current_ma_path.read_text())
        return mv * ma / 1e6


def find_rails(sysfs_root: str | Path = "/sys") -> list[Rail]:
    """All connected INA3221 channels under `sysfs_root`, in either layout."""
    root = Path(sysfs_root)
    rails = []
    for dev in sorted(root.glob("class/hwmon/hwmon*")):
        if _read(dev / "name") != "ina3221":
            continue
        for label_file in sorted(dev.glob("in*_label")):
            k = label_file.name[2:].split("_")[0]
            current = dev / f"curr{k}_input"
            # in4..in7 are shunt voltages / their sum and have no matching currK for a power reading
            if current.is_file():
                rails.append(Rail(_read(label_file), voltage_mv_path=dev / f"in{k}_input", current_ma_path=current))
    for dev in sorted(root.glob("bus/iio/devices/iio:device*")):
        if _read(dev / "name") != "ina3221x":
            continue
        for name_file in sorted(dev.glob("rail_name_*")):
            k = name_file.name.rsplit("_", 1)[1]
            rails.append(Rail(_read(name_file), power_mw_path=dev / f"in_power{k}_input"))
    return [r for r in rails if r.label not in UNCONNECTED]


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def available(sysfs_root: str | Path = "/sys") -> bool:
    try:
        rails = find_rails(sysfs_root)
        for rail in rails:
            rail.power_w()
    except (OSError, ValueError):
        return False
    return bool(rails)


class JetsonMeter:
    name = "jetson"

    def __init__(
        self,
        sysfs_root: str | Path = "/sys",
        rails: list[str] | None = None,
        poll_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        threaded: bool = True,
    ):
        """`threaded=False` leaves sampling to the caller (`self.poller.sample()`), as tests do."""
        self.rails = find_rails(sysfs_root)
        if not self.rails:
            raise GreenlaneError(
                f"no INA3221 power rails under {sysfs_root} (class/hwmon/*/name=ina3221 or "
                "bus/iio/devices/*/name=ina3221x); this is not a Jetson: choose another energy meter"
            )
        labels = [r.label for r in self.rails]
        if rails:
            missing = sorted(set(rails) - set(labels))
            if missing:
                raise GreenlaneError(f"jetson rails {missing} not found; this board has: {', '.join(labels)}")
            self.summed = list(rails)
        else:
            total = next((label for label in TOTAL_RAILS if label in labels), None)
            self.summed = [total] if total else labels
        self.poller = PowerPoller(self._read_power_w, poll_s=poll_s, clock=clock, threaded=threaded)

    def _read_power_w(self) -> dict[str, float]:
        return {rail.label: rail.power_w() for rail in self.rails}

    def start(self) -> None:
        self.poller.start()

    def stop(self) -> EnergyReading:
        per_rail, duration_s = self.poller.stop()
        details: dict = {f"{label}_j": joules for label, joules in per_rail.items()}
        details.update(
            rails_summed=list(self.summed),
            samples=self.poller.samples,
            max_sample_gap_s=self.poller.max_gap_s,
        )
        return EnergyReading(
            energy_j=sum(per_rail[label] for label in self.summed),
            duration_s=duration_s,
            source="jetson-ina3221",
            details=details,
        )
