"""The code's structure (self-consistency checks of the layout, not of behaviour): imports run one
way between the layers the README draws, no import cycles, imports at the top of modules, no
module or function too long to read at once, and `ruff check` clean."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "capture", "models")

# Layer of each package, bottom up: a module may import its own package and lower layers only.
# capture/ and models/ share a layer and may not import each other.
LAYERS = {
    "pipeline.core": 0,
    "capture": 1, "models": 1,
    "pipeline.tracking": 2,
    "pipeline.face": 3,
    "pipeline.body": 4,
    "pipeline.multicam": 5,
    "pipeline.export": 6,
    "pipeline.session": 7,
    "pipeline.live": 8,
    "pipeline": 9,  # the entry points directly in pipeline/ (python -m pipeline.X)
}
# Optional heavy extras, imported only where a run chooses them.
LAZY_ALLOWED = {"dask", "ray"}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = p
    return out


MODULES = _modules()


def _package(module: str) -> str:
    """The layer key of a module: its sub-package, or "pipeline" for an entry point."""
    parts = module.split(".")
    if parts[0] != "pipeline":
        return parts[0]
    if len(parts) >= 2 and f"pipeline.{parts[1]}" in LAYERS and (ROOT / "pipeline" / parts[1]).is_dir():
        return f"pipeline.{parts[1]}"
    return "pipeline"


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module of this project, line, at module level) of every import in a file."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    for n in tree.body:  # module-level try/if blocks count as module level
        if isinstance(n, (ast.Try, ast.If)):
            top |= {id(c) for c in ast.walk(n)}
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            out.append((name, node.lineno, id(node) in top))
    return out


def _project_target(name: str) -> str | None:
    """The project module an import names (a module, or the module a name is taken from)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def test_imports_run_one_way_between_layers():
    wrong = []
    for mod, path in MODULES.items():
        src = _package(mod)
        for name, line, _ in _imports(path):
            dst_mod = _project_target(name)
            if dst_mod is None or dst_mod == mod or dst_mod in ("pipeline",):
                continue
            dst = _package(dst_mod)
            if dst != src and not LAYERS[dst] < LAYERS[src]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {src} imports {dst_mod} ({dst})")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_no_import_cycles():
    graph = {m: set() for m in MODULES}
    for mod, path in MODULES.items():
        for name, _, _ in _imports(path):
            dst = _project_target(name)
            if dst and dst != mod and dst in graph and not MODULES[dst].name == "__init__.py":
                graph[mod].add(dst)
    state: dict[str, int] = {}
    cycles = []

    def visit(m, stack):
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


def test_imports_at_the_top_of_modules():
    lazy = []
    for mod, path in MODULES.items():
        for name, line, at_top in _imports(path):
            if not at_top and name.split(".")[0] not in LAZY_ALLOWED:
                lazy.append(f"{path.relative_to(ROOT)}:{line}: import {name} inside a function")
    assert not lazy, "\n".join(sorted(set(lazy)))


def test_modules_and_functions_short_enough_to_read():
    long = []
    for mod, path in MODULES.items():
        src = path.read_text()
        n = len(src.splitlines())
        if n > MAX_MODULE_LINES:
            long.append(f"{path.relative_to(ROOT)}: {n} lines")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.name} {length} lines")
    assert not long, "\n".join(long)


def test_ruff_check_is_clean():
    pytest.importorskip("ruff")
    p = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True,
                       cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
