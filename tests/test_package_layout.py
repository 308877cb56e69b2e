"""The shape of the package: every module imports on its own, ``import bdbnet`` stays light,
every import runs down the floors (:data:`FLOORS`), no import cycles between bdbnet modules
(counting imports inside functions and under ``TYPE_CHECKING``), no oversized modules.

The imports run in fresh interpreters (this process has imported half of bdbnet already). To keep
that affordable when torch alone takes seconds to import, one interpreter imports the third-party
dependencies once and then forks a child per bdbnet module: each child starts with no bdbnet
module loaded, so a module that only works after some other bdbnet module was imported fails.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bdbnet

PACKAGE_DIR = Path(bdbnet.__file__).resolve().parent
PYPROJECT = PACKAGE_DIR.parents[1] / "pyproject.toml"
MAX_LINES = 500

# The floors of the house, ground first: a unit (a top-level module or sub-package of bdbnet)
# imports only units on lower floors, wherever the import stands (module level, inside a
# function, under TYPE_CHECKING).
FLOORS: tuple[tuple[str, ...], ...] = (
    # pure: errors, the version, one registry type, plain-text tables, losses, metrics
    ("errors", "version", "registry", "reporting", "losses", "evaluation"),
    (
        "config",
        "files",
        "outputs",
        "vector_engines",
    ),  # config; atomic files; output checks; engine names
    ("runtime",),  # device, precision, seeding, process group
    ("models",),  # the contract, the preprocessing spec, architectures, loading
    ("data",),  # datasets, samplers, transforms, pipelines
    ("inference", "hub"),  # the extraction loop, evaluation of a model, indexes, export
    ("engine",),  # training only
    ("visualization",),  # pictures (training curves read a run's metrics)
    ("serve", "demo"),
    ("cli",),  # one module per command
    ("bdbnet", "__main__"),  # the package's face and the entry point
)

# Distribution name of every optional dependency (the extras of pyproject.toml) -> import name.
EXTRA_MODULES = {
    "matplotlib": "matplotlib",
    "tensorboard": "tensorboard",
    "scipy": "scipy",
    "faiss-cpu": "faiss",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "safetensors": "safetensors",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "python-multipart": "multipart",
    "openvino": "openvino",
    "nncf": "nncf",
    "pymilvus": "pymilvus",
    "milvus-lite": "milvus_lite",
}
# Extras that are groups of other extras or tools for developing bdbnet, not features.
NON_FEATURE_EXTRAS = {"test", "dev", "all"}
# Imported once before the forks (third-party only: the point is that no bdbnet module is).
PRELOAD = ("numpy", "PIL.Image", "yaml", "tqdm", "torch", "torchvision")


def _run(code: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -c code args`` in a fresh interpreter that imports bdbnet from these sources."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(PACKAGE_DIR.parent)},
    )


def _module_names() -> list[str]:
    errors: list[str] = []
    names = [
        m.name for m in pkgutil.walk_packages(bdbnet.__path__, "bdbnet.", onerror=errors.append)
    ]
    assert not errors, f"packages that failed to import while walking: {errors}"
    return ["bdbnet", *sorted(names)]


def _file_modules() -> dict[str, Path]:
    """Dotted name -> file of every module under src/bdbnet, from the file system."""
    out = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


_ISOLATED_IMPORTS = textwrap.dedent(
    """
    import importlib, json, os, subprocess, sys, traceback

    names = json.loads(sys.stdin.read())
    preload = sys.argv[1].split(",")
    failures = {}
    if hasattr(os, "fork"):
        for dep in preload:
            importlib.import_module(dep)
        assert not [m for m in sys.modules if m == "bdbnet" or m.startswith("bdbnet.")]
        for name in names:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: import one module, report, leave without cleanup
                os.close(r)
                msg = b""
                try:
                    importlib.import_module(name)
                except BaseException:
                    msg = traceback.format_exc().encode()
                os.write(w, msg[-4000:])
                os._exit(1 if msg else 0)
            os.close(w)
            chunks = []
            while True:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
            os.close(r)
            _, status = os.waitpid(pid, 0)
            if status != 0:
                failures[name] = b"".join(chunks).decode(errors="replace") or f"status {status}"
    else:  # no fork: one interpreter per module (slow, but the same check)
        for name in names:
            p = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True,
                               text=True)
            if p.returncode:
                failures[name] = p.stderr[-4000:]
    print(json.dumps(failures))
    """
)


def test_walk_packages_sees_every_module_file() -> None:
    assert set(_module_names()) == set(_file_modules())


def test_every_module_imports_on_its_own() -> None:
    names = _module_names()
    p = _run(_ISOLATED_IMPORTS, ",".join(PRELOAD), stdin=json.dumps(names))
    assert p.returncode == 0, p.stderr[-4000:]
    failures = json.loads(p.stdout.strip().splitlines()[-1])
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def _optional_modules() -> dict[str, str]:
    """Import name -> extra, for every dependency of the feature extras of pyproject.toml."""
    if not PYPROJECT.is_file():  # pragma: no cover - an installed copy without its sources
        pytest.skip("pyproject.toml is not next to the sources")
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        tomllib = pytest.importorskip("tomli")
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    out = {}
    for extra, reqs in extras.items():
        if extra in NON_FEATURE_EXTRAS:
            continue
        for req in reqs:
            dist = req.split("[")[0].split(";")[0]
            for sep in "<>=!~ ":
                dist = dist.split(sep)[0]
            assert dist in EXTRA_MODULES, f"extra {extra!r}: add {dist!r} to EXTRA_MODULES"
            out[EXTRA_MODULES[dist]] = extra
    return out


@pytest.mark.parametrize("entry", ["bdbnet", "bdbnet.cli"])
def test_import_does_not_load_optional_extras(entry: str) -> None:
    optional = _optional_modules()
    p = _run(f"import json, sys, {entry}; print(json.dumps(sorted(sys.modules)))")
    assert p.returncode == 0, p.stderr[-4000:]
    loaded = {m.split(".")[0] for m in json.loads(p.stdout.strip().splitlines()[-1])}
    loaded_extras = {m: optional[m] for m in optional if m in loaded}
    assert not loaded_extras, f"`import {entry}` imports optional extras: {loaded_extras}"


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module: at module level, inside functions and classes,
    under ``TYPE_CHECKING``; a deferred import ties two modules as much as any other."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def _import_graph() -> dict[str, dict[str, int]]:
    """bdbnet module -> {bdbnet module it imports anywhere: line}.

    ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg``. The
    parent packages that Python initialises on the way are not edges: every submodule would
    otherwise form a cycle with the ``__init__`` that re-exports it.
    """
    modules = _file_modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a non-module
                    target = target.rpartition(".")[0]
                if target in modules and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)

    cycles = []
    for comp in components:  # shortest way from the first module back to itself
        members, start = set(comp), comp[0]
        paths = {start: [start]}
        queue = [start]
        cycle = None
        while queue and cycle is None:
            v = queue.pop(0)
            for w in sorted(graph[v]):
                if w == start:
                    cycle = [*paths[v], start]
                    break
                if w in members and w not in paths:
                    paths[w] = [*paths[v], w]
                    queue.append(w)
        cycles.append(cycle or comp)
    return cycles


def test_no_import_cycles() -> None:
    graph = _import_graph()
    cycles = _cycles(graph)
    lines = []
    for cycle in cycles:
        lines.append(
            " -> ".join(cycle)
            + "  ("
            + ", ".join(f"{a} line {graph[a][b]}" for a, b in itertools.pairwise(cycle))
            + ")"
        )
    assert not cycles, "import cycles among bdbnet modules:\n" + "\n".join(lines)


def test_graph_counts_function_level_and_type_checking_imports() -> None:
    tree = ast.parse(
        textwrap.dedent(
            """
            import a
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                import b
            else:
                import c
            try:
                import d
            except ImportError:
                import e
            def f():
                import g
            class K:
                import h
            """
        )
    )
    names = sorted(
        n.names[0].name if isinstance(n, ast.Import) else str(n.module) for n in _imports(tree)
    )
    assert names == ["a", "b", "c", "d", "e", "g", "h", "typing"]


def _unit(module: str) -> str:
    """``bdbnet.engine.trainer`` -> ``engine``; ``bdbnet`` -> ``bdbnet``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _floor_of() -> dict[str, int]:
    return {unit: level for level, units in enumerate(FLOORS) for unit in units}


def test_every_unit_has_a_floor() -> None:
    units = {_unit(m) for m in _file_modules()}
    assert units == set(_floor_of()), "add new units to FLOORS, remove gone ones"


def test_imports_run_down_the_floors() -> None:
    floor = _floor_of()
    up = [
        f"{a} (floor {floor[_unit(a)] + 1}) imports {b} (floor {floor[_unit(b)] + 1}) "
        f"at line {line}"
        for a, edges in _import_graph().items()
        for b, line in edges.items()
        if _unit(a) != _unit(b) and floor[_unit(b)] >= floor[_unit(a)]
    ]
    assert not up, "imports that do not run down the floors:\n" + "\n".join(up)


def test_named_rules_of_the_floors() -> None:
    """Spelled out: inference never imports training; nothing but the entry point imports the
    command line; the runtime and the models know nothing of training or inference."""
    graph = _import_graph()
    forbidden = {
        "inference": {"engine", "cli", "serve"},
        "runtime": {"models", "data", "inference", "engine"},
        "models": {"data", "inference", "engine"},
        "evaluation": {"models", "data", "inference", "engine"},
    }
    broken = [
        f"{a} imports {b}"
        for a, edges in graph.items()
        for b in edges
        if _unit(b) in forbidden.get(_unit(a), ())
        or (_unit(b) == "cli" and _unit(a) not in ("cli", "__main__"))
    ]
    assert not broken, broken


def test_cycle_finder_reports_a_cycle() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_module_is_too_long() -> None:
    long = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR).as_posix()
        n = len(path.read_text().splitlines())
        if n > MAX_LINES:
            long[rel] = n
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"
