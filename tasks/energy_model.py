"""Workload energy and runtime models: E(tin, tout) and runtime(tin, tout).

The seed paper fits E = a0*tin + a1*tout + a2*tin*tout by ordinary least
squares. On real A100 data that has R^2 ~0.96 yet a median error of 79-234% and
negative predictions, because absolute least squares spends the whole fit on
the few huge (2048, 2048) cells and the cost of generation is not linear.

Here every candidate form is linear in its coefficients, the coefficients are
non-negative (NNLS), so with non-negative terms no prediction is ever negative,
and the fit can minimise *relative* error (weights 1/y) because the scheduler
cares about percentage error at every size, not joules at the largest one. The
form and weighting are chosen by 5-fold cross-validated median absolute
percentage error (MdAPE). Terms come from the cost of a decoder forward pass:

- `1`: fixed cost per request (launch, model call overhead, idle power x time).
- `tin`, `tin^2`: prefill, linear layers and attention over the prompt.
- `tout`, `tin*tout`, `tout^2`: decode with a KV cache; step k attends over tin+k.
- `tin^2*tout`, `tin*tout^2`, `tout^3`: decode *without* a KV cache, where step k
  re-runs the forward over all tin+k tokens, so attention costs sum_k (tin+k)^2.

No torch here: this runs in the DAG's fitting task and the CLI.
"""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tasks.errors import GreenlaneError

TERMS = {
    "1": lambda tin, tout: np.ones_like(tin),
    "tin": lambda tin, tout: tin,
    "tout": lambda tin, tout: tout,
    "tin*tout": lambda tin, tout: tin * tout,
    "tin^2": lambda tin, tout: tin**2,
    "tout^2": lambda tin, tout: tout**2,
    "tin^2*tout": lambda tin, tout: tin**2 * tout,
    "tin*tout^2": lambda tin, tout: tin * tout**2,
    "tout^3": lambda tin, tout: tout**3,
}

# Candidate forms, simplest first: on a tie in CV error the simpler one wins.
FORMS = {
    "paper": ["tin", "tout", "tin*tout"],
    "fixed-linear": ["1", "tin", "tout", "tin*tout"],
    "kv-cache": ["1", "tin", "tin^2", "tout", "tin*tout", "tout^2"],
    "no-kv-cache": ["1", "tin", "tin^2", "tout", "tin*tout", "tout^2", "tin^2*tout", "tin*tout^2", "tout^3"],
}
WEIGHTINGS = ("relative", "absolute")
TARGETS = ("energy_j", "runtime_s")
# Most input or output tokens of one request the models accept: beyond any model's context window, so a
# larger count is an export error; it also keeps tout^3 (1e21) and every prediction finite.
MAX_TOKENS = 10_000_000


@dataclass
class EnergyModel:
    """A fitted model of one target (joules or seconds) for one model/variant."""

    target: str
    """Column that was fitted: `energy_j` (joules) or `runtime_s` (seconds)."""
    form: str
    """Key into FORMS of the chosen form."""
    weighting: str
    """`relative` (least squares on (pred-y)/y) or `absolute` (on pred-y)."""
    terms: list[str]
    coefficients: list[float]
    """One per term, non-negative, in the target's unit per unit of the term (tokens, tokens^2, ...)."""
    r2: float
    """In-sample coefficient of determination on the unweighted target."""
    cv_mdape: float
    """5-fold cross-validated median absolute percentage error, as a fraction (0.05 = 5%)."""
    min_prediction: float
    """Smallest in-sample prediction; never negative by construction, reported as evidence."""
    n_points: int
    tin_range: list[int]
    """[min, max] input tokens seen; predictions outside are extrapolation."""
    tout_range: list[int]

    def predict(self, tin, tout) -> np.ndarray:
        return _design(self.terms, tin, tout) @ np.asarray(self.coefficients)

    def summary(self) -> dict:
        """The figures the CLI prints for each model."""
        keys = ("r2", "cv_mdape", "min_prediction", "terms", "coefficients")
        return {k: getattr(self, k) for k in keys}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EnergyModel":
        unknown = set(data.get("terms", [])) - set(TERMS)
        if unknown:
            raise GreenlaneError(f"energy model uses unknown terms {sorted(unknown)}; known: {', '.join(TERMS)}")
        return cls(**data)


def _design(terms: list[str], tin, tout) -> np.ndarray:
    tin = np.atleast_1d(np.asarray(tin, dtype=float))
    tout = np.atleast_1d(np.asarray(tout, dtype=float))
    return np.column_stack([TERMS[t](tin, tout) for t in terms])


def _nnls(A: np.ndarray, y: np.ndarray, weighting: str) -> np.ndarray:
    from scipy.optimize import nnls

    # Columns span 1 to ~1e10 (tout^3); scaling each to max 1 keeps NNLS well conditioned.
    scale = np.abs(A).max(axis=0)
    scale[scale == 0] = 1.0
    w = 1.0 / y if weighting == "relative" else np.ones_like(y)
    coef, _ = nnls((A / scale) * w[:, None], y * w, maxiter=50 * A.shape[1])
    return coef / scale


def mdape(pred, y) -> float:
    """Median absolute percentage error as a fraction."""
    return float(np.median(np.abs(np.asarray(pred) - y) / np.abs(y)))


def r2_score(pred, y) -> float:
    y = np.asarray(y, dtype=float)
    return float(1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))


def _cv_mdape(terms, weighting, tin, tout, y, folds: int, seed: int) -> float:
    """Median over all points of the out-of-fold absolute percentage error."""
    order = np.random.default_rng(seed).permutation(len(y))
    errors = np.empty(len(y))
    A = _design(terms, tin, tout)
    for held in np.array_split(order, folds):
        train = np.setdiff1d(order, held)
        coef = _nnls(A[train], y[train], weighting)
        errors[held] = np.abs(A[held] @ coef - y[held]) / y[held]
    return float(np.median(errors))


def _check_points(tin, tout, y, folds: int):
    tin, tout, y = (np.asarray(a, dtype=float) for a in (tin, tout, y))
    if not (len(tin) == len(tout) == len(y)):
        raise GreenlaneError("tin, tout and the target must have the same length")
    if not np.all(np.isfinite(np.concatenate([tin, tout, y]))):
        raise GreenlaneError("tin, tout and the target must be finite numbers (found NaN or inf)")
    if np.any(y <= 0) or np.any(tin < 0) or np.any(tout < 0):
        raise GreenlaneError("targets must be > 0 and token counts >= 0 (relative error is undefined otherwise)")
    if max(tin.max(initial=0), tout.max(initial=0)) > MAX_TOKENS:
        raise GreenlaneError(f"token counts must be at most {MAX_TOKENS:,} per request (MAX_TOKENS), got "
                             f"{max(tin.max(), tout.max()):g}")
    if len(y) < 2 * folds:
        raise GreenlaneError(f"need at least {2 * folds} points for {folds}-fold cross-validation, got {len(y)}")
    return tin, tout, y


def fit(
    tin, tout, y, target: str = "energy_j", forms: dict | None = None, folds: int = 5, seed: int = 0
) -> EnergyModel:
    """Fit every candidate form x weighting; keep the one with the lowest CV MdAPE."""
    tin, tout, y = _check_points(tin, tout, y, folds)
    forms = FORMS if forms is None else forms
    best = None
    for (name, terms), weighting in itertools.product(forms.items(), WEIGHTINGS):
        # A form needs more training points than coefficients or the CV error is meaningless.
        if len(terms) >= len(y) * (folds - 1) // folds:
            continue
        err = _cv_mdape(terms, weighting, tin, tout, y, folds, seed)
        if best is None or err < best[0]:
            best = (err, name, terms, weighting)
    if best is None:
        raise GreenlaneError(f"too few points ({len(y)}) for any candidate form")
    err, name, terms, weighting = best
    coef = _nnls(_design(terms, tin, tout), y, weighting)
    pred = _design(terms, tin, tout) @ coef
    return EnergyModel(
        target=target,
        form=name,
        weighting=weighting,
        terms=list(terms),
        coefficients=[float(c) for c in coef],
        r2=r2_score(pred, y),
        cv_mdape=err,
        min_prediction=float(pred.min()),
        n_points=int(len(y)),
        tin_range=[int(tin.min()), int(tin.max())],
        tout_range=[int(tout.min()), int(tout.max())],
    )


def paper_baseline(tin, tout, y) -> dict:
    """The seed paper's fit, unconstrained OLS without intercept, for comparison only."""
    tin, tout, y = (np.asarray(a, dtype=float) for a in (tin, tout, y))
    A = _design(FORMS["paper"], tin, tout)
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    pred = A @ coef
    return {
        "r2": r2_score(pred, y),
        "mdape": mdape(pred, y),  # in-sample, as the paper reports it
        "negative_predictions": int(np.sum(pred < 0)),
        "min_prediction": float(pred.min()),
        "coefficients": [float(c) for c in coef],
    }


def read_grid(path: str | Path, target: str = "energy_j") -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Rows of a token-grid CSV grouped by its `model` column (`all` when absent)."""
    path = Path(path)
    if target not in TARGETS:
        raise GreenlaneError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")
    if not path.is_file():
        raise GreenlaneError(f"no such CSV file: {path}")
    try:
        groups = _read_rows(path, target)
    except (UnicodeDecodeError, csv.Error) as err:  # a binary file: undecodable bytes or NUL characters
        raise GreenlaneError(f"{path} is not a UTF-8 text CSV ({type(err).__name__}: {err}); "
                             "give the token-grid CSV the benchmark wrote") from None
    except OSError as err:
        raise GreenlaneError(f"cannot read {path}: {err.strerror or err}") from None
    if not groups:
        raise GreenlaneError(f"{path}: no data rows")
    return {name: tuple(np.array(col) for col in zip(*rows)) for name, rows in groups.items()}


def _read_rows(path: Path, target: str) -> dict[str, list[tuple[float, float, float]]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: a spreadsheet's BOM is not part of "tin"
        reader = csv.DictReader(fh)
        missing = [c for c in ("tin", "tout", target) if c not in (reader.fieldnames or [])]
        if missing:
            raise GreenlaneError(f"{path}: missing column(s) {', '.join(missing)}; need tin, tout and {target}")
        groups: dict[str, list[tuple[float, float, float]]] = {}
        for line, row in enumerate(reader, start=2):
            try:
                point = (float(row["tin"]), float(row["tout"]), float(row[target]))
            except (TypeError, ValueError):
                raise GreenlaneError(f"{path}:{line}: tin, tout and {target} must be numbers") from None
            groups.setdefault(row.get("model") or "all", []).append(point)
    return groups


def fit_csv(path: str | Path, target: str = "energy_j") -> dict[str, EnergyModel]:
    """One fitted model per value of the CSV's `model` column."""
    models = {}
    for name, (tin, tout, y) in read_grid(path, target).items():
        try:
            models[name] = fit(tin, tout, y, target=target)
        except GreenlaneError as err:
            raise GreenlaneError(f"{path}: model {name!r}: {err}") from None
    return models


def save_models(models: dict[str, EnergyModel], path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({k: m.to_dict() for k, m in models.items()}, indent=2) + "\n")
    except OSError as err:
        culprit = f" ({err.filename})" if err.filename and str(err.filename) != str(path) else ""
        raise GreenlaneError(f"cannot write the energy models to {path}: {err.strerror or err}{culprit}") from None
    return path


def load_models(path: str | Path) -> dict[str, EnergyModel]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise GreenlaneError(f"cannot read energy model JSON {path}: {err}") from None
    return {k: EnergyModel.from_dict(v) for k, v in data.items()}


def sweep_grid(tins, touts) -> list[tuple[int, int]]:
    """Every (tin, tout) pair of a token-grid sweep, tin-major, for the benchmark runner."""
    return [(int(i), int(o)) for i, o in itertools.product(tins, touts)]


def powers_of_two(lo: int = 8, hi: int = 2048) -> list[int]:
    """8, 16, ..., 2048: the paper's grid axis (a log-spaced grid covers short and long requests)."""
    if lo < 1 or hi < lo:
        raise GreenlaneError(f"grid bounds must satisfy 1 <= lo <= hi, got lo={lo}, hi={hi}")
    return [2**k for k in range(int(np.ceil(np.log2(lo))), int(np.floor(np.log2(hi))) + 1)]
