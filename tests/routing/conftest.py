"""Hand-checkable candidates: energy linear in output tokens, so every optimum can be worked out on paper."""

from __future__ import annotations

import json

import pytest

from tasks.energy_model import EnergyModel, save_models
from tasks.routing.candidates import Candidate


def linear(target: str, per_tout: float, fixed: float = 0.0) -> EnergyModel:
    """target = fixed + per_tout * tout (joules or seconds per request)."""
    return EnergyModel(target=target, form="fixed-linear", weighting="relative", terms=["1", "tout"],
                       coefficients=[fixed, per_tout], r2=1.0, cv_mdape=0.0, min_prediction=fixed, n_points=10,
                       tin_range=[1, 4096], tout_range=[1, 4096])


def make(name: str, accuracy: float, j_per_token: float, **kw) -> Candidate:
    return Candidate(name=name, accuracy=accuracy, energy=linear("energy_j", j_per_token),
                     runtime=linear("runtime_s", j_per_token / 100), energy_source="rapl", **kw)


@pytest.fixture
def candidate():
    """`candidate(name, accuracy, j_per_token, **fields)`: a Candidate with linear models."""
    return make


@pytest.fixture
def trio() -> list[Candidate]:
    """big: most accurate and most energy per token; small: least of both."""
    return [make("big", 0.80, 3.0), make("mid", 0.60, 2.0), make("small", 0.40, 1.0)]


@pytest.fixture
def candidates_file(tmp_path, trio):
    """The trio as a `--candidates` file: one energy_model.json per candidate, in QC on a CPU."""
    entries = []
    for c in trio:
        save_models({"energy_j": c.energy, "runtime_s": c.runtime}, tmp_path / c.name / "energy_model.json")
        entries.append({"name": c.name, "accuracy": c.accuracy, "energy_model": f"{c.name}/energy_model.json",
                        "energy_source": "rapl", "region": "QC", "hardware": "cpu"})
    path = tmp_path / "candidates.json"
    path.write_text(json.dumps(entries))
    return path
