"""The package layout holds: every package installed, our own imports direct and loud,
no import circle between our modules."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "modelops"
#: the edges that may import our own heavy modules inside a function (start-up time of
#: commands that do not render; see modelops/cli/app.py), and the demo that drives them
LAZY_EDGES = ("modelops/cli/", "modelops/demo.py")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    for path in sorted((ROOT / "components").glob("*.py")):
        stem = path.stem
        found["modelops.components" + ("" if stem == "__init__" else f".{stem}")] = path
    return found


def _imports(tree: ast.AST, top_level_only: bool) -> list[tuple[str, ast.AST]]:
    """(imported module, node) of our own modules; ``top_level_only``: outside functions."""
    out = []
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if top_level_only and isinstance(node, (ast.If, ast.Try, ast.With)):
            stack.extend(getattr(node, "body", []) + getattr(node, "orelse", []) + getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                stack.extend(handler.body)
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node) for a in node.names if a.name.startswith("modelops")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("modelops") and node.level == 0:
            out += [(node.module, node)]
            out += [(f"{node.module}.{a.name}", node) for a in node.names]
    return out


def test_every_package_is_installed_and_components_only_as_modelops_components() -> None:
    # GIVEN the packages of the tree WHEN pyproject lists what is installed
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {".".join(p.relative_to(ROOT).parts) for p in PACKAGE.rglob("*") if (p / "__init__.py").is_file()}
    packages |= {"modelops"}
    # THEN every package is installed, and components/ under our own name
    assert set(config["packages"]) == packages | {"modelops.components"}
    assert config["package-dir"] == {"modelops.components": "components"}
    assert "components" not in config["packages"]


def test_our_own_modules_are_never_imported_as_optional() -> None:
    # GIVEN every module WHEN an import of ours sits in a try block THEN nothing swallows its failure
    offenders = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Try):
                caught = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
                if caught & {"ImportError", "ModuleNotFoundError"} and any(
                        isinstance(n, (ast.Import, ast.ImportFrom)) and _imports(ast.Module(body=[n], type_ignores=[]), True)
                        for n in node.body):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_library_modules_import_ours_at_their_top() -> None:
    # GIVEN the library (everything but the CLI edge) THEN no import of ours hides in a function
    offenders = []
    for name, path in _modules().items():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(LAZY_EDGES):
            continue
        tree = ast.parse(path.read_text(), str(path))
        top = {id(node) for _, node in _imports(tree, True)}
        for module, node in _imports(tree, False):
            if id(node) not in top:  # (imports under ``if TYPE_CHECKING:`` count as top-level)
                offenders.append(f"{rel}:{node.lineno}: {module}")
    assert sorted(set(offenders)) == []


def test_no_import_circle_between_our_modules() -> None:
    # GIVEN the module-level imports of every module of ours
    modules = _modules()
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        deps = set()
        typing_only = {id(n) for block in tree.body if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                       for n in block.body}
        for module, node in _imports(tree, True):
            if id(node) in typing_only:
                continue
            if module in modules and module != name:
                deps.add(module)
        edges[name] = deps
    # WHEN the graph is walked THEN no module reaches itself
    # (a package's __init__ importing its own submodules is the package, not a circle)
    circles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges.get(node, ())):
            if node.startswith(dep + "."):
                continue
            if state.get(dep) == 1:
                circles.append(trail[trail.index(dep):] + [dep] if dep in trail else [node, dep])
            elif dep not in state:
                visit(dep, trail + [dep])
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert circles == []
