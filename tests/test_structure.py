"""Import rules of the `tasks` package, read from the source (AST): nothing is imported to check them.

1. Only modules under `tasks/tracking/` import `mlflow`: no `import mlflow...` / `from mlflow... import` outside
   it, at the top of a module or inside a function, and no `importlib.import_module("mlflow...")`.
2. The import graph of the `tasks.*` modules has no cycle. An edge is every static import statement of a tasks
   module anywhere in a module, top level or inside a function (a lazy import inside a function still runs when
   the function does, so it counts), except inside `if TYPE_CHECKING:`, which never runs. It points at the
   module named (`from tasks.x import y`: at `tasks.x.y` when that is a module, else at `tasks.x`) and at the
   packages above that module that do not also enclose the importer (importing `tasks.a.b` runs
   `tasks/a/__init__.py`). The registries' lazy `importlib.import_module(NAME)` by configured name are not
   edges: a package loading its own plug-ins is the registry's design (STYLE habit 2).
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MLFLOW_HOME = "tasks.tracking"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of `package` under `root` (a package is its __init__)."""
    out = {}
    for path in sorted((root / package.replace(".", "/")).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`) blocks."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
            (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
            or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
        ):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def imported_names(module: str, path: Path) -> list[tuple[str, int]]:
    """(absolute dotted name, line) for every import in the file that runs, wherever it stands; for
    `from a import b` both `a.b` and `a` are candidates, resolved against the modules by the caller."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _type_checking_nodes(tree)
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importer's package, one level up per extra dot
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            out += [(f"{base}.{alias.name}", node.lineno) for alias in node.names] + [(base, node.lineno)]
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.append((node.args[0].value, node.lineno))  # a literal name only: registry names are not edges
    return out


def mlflow_imports(root: Path, package: str, allowed: str) -> list[str]:
    """`file:line` for each import of mlflow by a module outside `allowed`."""
    bad = set()
    for module, path in module_files(root, package).items():
        if module == allowed or module.startswith(allowed + "."):
            continue
        for name, line in imported_names(module, path):
            if name == "mlflow" or name.startswith("mlflow."):
                bad.add(f"{path.relative_to(root)}:{line}")
    return sorted(bad)


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package modules it imports (see the module docstring for what makes an edge)."""
    modules = module_files(root, package)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for name, _ in imported_names(module, path):
            if name not in modules or name == module:
                continue
            parts = name.split(".")
            # the module and the packages above it that do not enclose the importer (those are already running)
            for i in range(len(parts), 0, -1):
                target = ".".join(parts[:i])
                if target == module or module.startswith(target + "."):
                    break
                graph[module].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        return list(err.args[1])
    return None


def test_only_tracking_imports_mlflow():
    bad = mlflow_imports(REPO, "tasks", MLFLOW_HOME)
    assert not bad, "mlflow imported outside tasks/tracking/ (add a function there instead):\n" + "\n".join(bad)


def test_the_tasks_import_graph_has_no_cycle():
    graph = import_graph(REPO, "tasks")
    assert len(graph) > 50 and graph["tasks.pipeline"]  # the walk found the package and its imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(reversed(cycle))


# The checks themselves, on small packages written for the purpose: each rule must catch what it forbids.

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_lazy_import_inside_a_function_closes_a_cycle(tmp_path):
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import thing\n",
        "pkg/b.py": "thing = 1\ndef late():\n    from pkg import a\n    return a\n",
        "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import thing\n",
    })
    graph = import_graph(root, "pkg")
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.a"} and graph["pkg.c"] == set()
    assert set(find_cycle(graph)) == {"pkg.a", "pkg.b"}
    (root / "pkg/b.py").write_text("thing = 1\n")
    assert find_cycle(import_graph(root, "pkg")) is None


def test_importing_a_submodule_runs_its_package(tmp_path):
    # pkg.sub/__init__ imports pkg.x, and pkg.x imports pkg.sub.leaf: that runs pkg/sub/__init__ first, a cycle
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/x.py": "from pkg.sub.leaf import f\n",
        "pkg/sub/__init__.py": "from . import helper\nfrom pkg.x import f as g\n",
        "pkg/sub/helper.py": "from .leaf import f\n",
        "pkg/sub/leaf.py": "def f():\n    return 1\n",
    })
    graph = import_graph(root, "pkg")
    assert graph["pkg.sub.helper"] == {"pkg.sub.leaf"}  # its own package is already running: no edge back
    assert graph["pkg.sub"] == {"pkg.sub.helper", "pkg.x"}
    assert set(find_cycle(graph)) == {"pkg.x", "pkg.sub"}


@pytest.mark.parametrize("source", [
    "import mlflow\n",
    "from mlflow.exceptions import MlflowException\n",
    "def f():\n    import mlflow.pyfunc\n",
    "import importlib\nclient = importlib.import_module('mlflow').MlflowClient\n",
])
def test_an_mlflow_import_outside_tracking_is_caught(tmp_path, source):
    root = _package(tmp_path, {"pkg/__init__.py": "", "pkg/tracking/__init__.py": "import mlflow\n",
                               "pkg/pipeline.py": source})
    assert [b.split(":")[0] for b in mlflow_imports(root, "pkg", "pkg.tracking")] == ["pkg/pipeline.py"]
