"""Energy meters, one module each, all with the `EnergyMeter` shape.

`METERS` maps a config name to the lazy import path of its factory, so a meter's
dependencies are imported only when it is used. `select_meter("auto")` takes the
best one the hardware offers.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import tempfile

from tasks.errors import GreenlaneError

METERS = {
    "codecarbon": "tasks.measurement.meters.codecarbon:CodecarbonMeter",
    "nvml": "tasks.measurement.meters.nvml:NvmlMeter",
    "rapl": "tasks.measurement.meters.rapl:RaplMeter",
    "jetson": "tasks.measurement.meters.jetson:JetsonMeter",
    "estimate": "tasks.measurement.meters.estimate:EstimateMeter",
}

# Measured counters first; codecarbon last because off RAPL it is itself an estimate (and labels itself so).
AUTO_ORDER = ("nvml", "rapl", "jetson", "codecarbon")
# What `auto` may pick for work on each device: a CPU benchmark on a GPU machine must not read the idle GPU's
# NVML counter, and a GPU benchmark must not read the CPU package's. A Jetson's rails cover both.
DEVICE_AUTO_ORDER = {"cpu": ("rapl", "jetson", "codecarbon"), "cuda": ("nvml", "jetson", "codecarbon")}

log = logging.getLogger(__name__)


def _factory(name: str):
    if name not in METERS:
        choices = ", ".join(["auto", *sorted(METERS)])
        raise GreenlaneError(f"unknown energy meter {name!r}; choose one of: {choices}")
    module, _, attr = METERS[name].partition(":")
    return importlib.import_module(module), attr


def make_meter(name: str, **kwargs):
    """Instantiate the meter registered under `name`."""
    module, attr = _factory(name)
    return getattr(module, attr)(**kwargs)


def _accepted(func, kwargs: dict) -> dict:
    params = inspect.signature(func).parameters
    return {k: v for k, v in kwargs.items() if k in params}


def select_meter(preferred: str = "auto", order: tuple[str, ...] = AUTO_ORDER, **kwargs):
    """The meter named `preferred`, or with "auto" the first of `order` this machine supports.

    `kwargs` may mix options of several meters (e.g. `sysfs_root` for rapl/jetson and `output_dir`
    for codecarbon); each meter receives only those its constructor accepts. An option no meter
    accepts is an error rather than silently dropped.
    """
    factories = {name: getattr(*_factory(name)) for name in METERS}
    unknown = set(kwargs) - {p for f in factories.values() for p in inspect.signature(f).parameters}
    if unknown:
        raise GreenlaneError(f"energy meter options {sorted(unknown)} are not accepted by any meter")
    if preferred != "auto":
        _factory(preferred)  # an unknown name fails here, listing the choices
        return _build(preferred, factories[preferred], kwargs)
    for name in order:
        module, _ = _factory(name)
        detect = getattr(module, "available", None)
        if detect is None or detect(**_accepted(detect, kwargs)):
            log.info("energy meter: auto-selected %s", name)
            return _build(name, factories[name], kwargs)
    raise AssertionError(f"meter order {order} does not end with a meter that is always available")


def _build(name: str, factory, kwargs: dict):
    kwargs = _accepted(factory, kwargs)
    if name == "codecarbon" and "output_dir" not in kwargs:
        # codecarbon must write its emissions.csv somewhere; the reading's details name the path.
        kwargs["output_dir"] = tempfile.mkdtemp(prefix="greenlane-codecarbon-")
    return factory(**kwargs)
