"""What the code imports is declared in pyproject.toml, and what is declared is used.

Walks every import in tasks/ and dags/ (function-level ones too: a lazy import still has to be installed)
and maps each third-party top-level module to the distributions that install it, with
importlib.metadata.packages_distributions() over the installed environment.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("tasks", "dags")
# Declared, but reached without an `import` in our code; each needs its reason.
USED_WITHOUT_IMPORT = {
    "sentencepiece": "llama.cpp's GGUF converter imports it for Llama-family tokenizers",
    "accelerate": "transformers needs it for device_map loading and bitsandbytes models; servable requirement",
    "celery": "pinned below 5.7 for the Celery provider, which imports celery.backends.database.retry",
    "psycopg2-binary": "Airflow's and MLflow's PostgreSQL driver in the distributed stack",
    "asyncpg": "Airflow 3's async engine on the PostgreSQL metadata DB",
    "onnxruntime": "the onnxruntime-genai model builder's quantizer",
    "onnx": "imported by the onnxruntime-genai model builder, whose wheel does not declare it",
    "onnx-ir": "imported by the onnxruntime-genai model builder, whose wheel does not declare it",
}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def req_name(requirement: str) -> str:
    return norm(re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0])


def declared() -> set[str]:
    """Runtime dependencies and the optional extras users install (`test` is for the test suite only)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [r for name, reqs in project.get("optional-dependencies", {}).items() if name != "test" for r in reqs]
    return {req_name(r) for r in [*project["dependencies"], *extras]}


def imported_modules() -> dict[str, set[str]]:
    """Top-level module -> files importing it, for absolute imports of modules that are not ours or stdlib."""
    local = {p.stem for d in SCANNED for p in (REPO / d).glob("*.py")} | set(SCANNED)
    found: dict[str, set[str]] = {}
    for d in SCANNED:
        for path in (REPO / d).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for top in {n.partition(".")[0] for n in names}:
                    if top not in sys.stdlib_module_names and top not in local:
                        found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def providers(declared_names: set[str]) -> dict[str, set[str]]:
    """Declared distribution -> what counts as it: itself, plus the direct requirements of a meta-package
    (apache-airflow installs no module of its own; apache-airflow-core and -task-sdk install `airflow`)."""
    out = {}
    for name in declared_names:
        out[name] = {name}
        try:
            files = md.distribution(name).files or []
        except md.PackageNotFoundError:
            continue
        if not any(str(f).endswith(".py") for f in files):
            out[name] |= {req_name(r) for r in md.requires(name) or [] if "extra ==" not in r}
    return out


def test_every_third_party_import_is_declared():
    by_module = {m: {norm(d) for d in ds} for m, ds in md.packages_distributions().items()}
    covered = set().union(*providers(declared()).values())
    missing = [f"{m} (installed by {', '.join(sorted(by_module.get(m, [])) or ['nothing'])}; "
               f"imported in {', '.join(sorted(files))})"
               for m, files in sorted(imported_modules().items()) if not by_module.get(m, set()) & covered]
    assert not missing, "imported but not declared in pyproject.toml: " + "; ".join(missing)


def test_every_declared_dependency_is_imported_or_has_a_reason():
    by_module = {m: {norm(d) for d in ds} for m, ds in md.packages_distributions().items()}
    used = set().union(*(by_module.get(m, set()) for m in imported_modules()))
    unused = sorted(name for name, dists in providers(declared()).items()
                    if not dists & used and name not in USED_WITHOUT_IMPORT)
    assert not unused, f"declared in pyproject.toml but never imported by tasks/ or dags/: {unused}"
    stale = sorted(set(USED_WITHOUT_IMPORT) - declared())
    assert not stale, f"USED_WITHOUT_IMPORT names what pyproject.toml no longer declares: {stale}"


def test_the_scan_sees_lazy_imports():
    """A check on the walker itself: imports inside functions count (scipy is imported only inside them)."""
    assert "tasks/measurement/stats.py" in imported_modules()["scipy"]
