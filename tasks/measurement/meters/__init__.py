"""Energy meters, one module each, all with the `EnergyMeter` shape.

`METERS` maps a config name to the lazy import path of its factory, so a meter's
dependencies are imported only when it is used.
"""

from __future__ import annotations

import importlib

from tasks.errors import GreenlaneError

METERS = {
    "codecarbon": "tasks.measurement.meters.codecarbon:CodecarbonMeter",
}


def make_meter(name: str, **kwargs):
    """Instantiate the meter registered under `name`."""
    if name not in METERS:
        raise GreenlaneError(f"unknown energy meter {name!r}; choose one of: {', '.join(sorted(METERS))}")
    module, _, attr = METERS[name].partition(":")
    return getattr(importlib.import_module(module), attr)(**kwargs)
