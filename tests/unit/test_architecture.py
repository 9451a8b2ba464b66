"""The package's architecture, checked: the import directions written down once in
pyproject.toml (`[tool.importlinter]`), no import cycles, the size aims, and a
docs/architecture.md that draws the same layers and names every module."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "objectstore_s3"
DOC = ROOT / "docs" / "architecture.md"

MODULE_LINES, CLASS_LINES, FUNCTION_LINES = 400, 260, 60


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = config["tool"]["importlinter"]["contracts"]
    return list(contract["layers"])


def test_every_import_goes_down_the_layers() -> None:
    # In a process of its own: import-linter configures logging with dictConfig, which
    # would disable the store's logger for the tests that run after this one.
    run = "from importlinter.cli import lint_imports as l; raise SystemExit(l(no_cache=True))"
    done = subprocess.run(
        [sys.executable, "-c", run], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr  # the report names the import


def test_no_module_is_outside_the_layers() -> None:
    named = {name.strip() for layer in _layers() for name in layer.split("|")}
    top = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").exists())
        and path.name not in ("__init__.py", "__main__.py")
    }
    assert top == named


def test_the_import_graph_has_no_cycles() -> None:
    graph = grimp.build_graph("objectstore_s3", cache_dir=None)  # nothing written
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                cycles.append(" -> ".join((importer, *back)))
    assert cycles == []


def _oversized(path: Path) -> list[str]:
    text = path.read_text()
    found = []
    if len(text.splitlines()) > MODULE_LINES:
        found.append(f"{path.name}: {len(text.splitlines())} lines")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            limit = CLASS_LINES if isinstance(node, ast.ClassDef) else FUNCTION_LINES
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                found.append(f"{path.name}:{node.lineno} {node.name}: {length} lines")
    return found


def test_modules_classes_and_functions_stay_small() -> None:
    found = [item for path in sorted(PACKAGE.rglob("*.py")) for item in _oversized(path)]
    assert found == []


def test_the_architecture_page_draws_the_layers_and_names_every_module() -> None:
    text = DOC.read_text()
    drawing = re.search(r"```text\n(.*?)```", text, re.S)
    assert drawing is not None, "docs/architecture.md has no ```text drawing of the layers"
    drawn = [
        re.split(r"\s{2,}", line.strip())[0]
        for line in drawing.group(1).splitlines()
        if line.strip() and not line.strip().startswith(("│", "▼", "↓"))
    ]
    assert drawn == _layers()
    modules = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py"
    )
    assert [module for module in modules if f"`{module}`" not in text] == []


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if re.match(r"_[^_]", a.name)]
                if private:
                    found.append(f"{path.relative_to(PACKAGE)}: {node.module} {private}")
    assert found == []
