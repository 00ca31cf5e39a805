"""Imports flow one way: no import cycle between the package's modules, and no module imports a layer above its
own (docs/design_notes.md draws the layers).

Every import counts, at module level and inside functions, with one exception: a result's ``plot()`` /
``_repr_html_`` may import the figures of ``viz`` lazily (a probe's result draws itself, but the probe never needs
plotly to compute it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "modadd_interp"

#: The layers, lowest first. A module may import its own layer and those below; a package is named by its
#: directory (every module inside it is in that layer unless listed on its own).
LAYERS: list[set[str]] = [
    {"errors"},
    {"fourier", "groups", "readout", "group_readout", "display"},  # pure math, and the results' display base
    {"config", "storage", "operations", "task", "hook_names", "mlp", "tl_adapter", "grid", "formats",
     "checkpoints", "inference", "group_inference", "train", "runs", "loading"},
    {"probes"},
    {"hypotheses"},
    {"causal"},
    {"progress", "slt"},
    {"viz", "report", "analysis"},
    {"sweep", "cli", "__init__"},
]
LAZY_VIZ_FUNCTIONS = {"plot", "_repr_html_"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom | ast.Import, is_package: bool) -> list[str]:
    """The package modules an import statement names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [a.name.removeprefix("modadd_interp.") for a in node.names if a.name.startswith("modadd_interp")]
    if node.level == 0:
        if not (node.module or "").startswith("modadd_interp"):
            return []
        base = (node.module or "").removeprefix("modadd_interp").lstrip(".")
    else:
        here = module.split(".") if module != "__init__" else []
        if not is_package:
            here = here[:-1]
        up = node.level - 1
        here = here[: len(here) - up] if up else here
        base = ".".join([*here, *([node.module] if node.module else [])])
    names = [base] if base else []
    # `from . import x` / `from .pkg import mod`: the names may be modules themselves
    return names + [f"{base}.{a.name}" if base else a.name for a in node.names]


def _imports(modules: dict[str, Path]) -> dict[str, set[tuple[str, int]]]:
    """``{module: {(imported module, line)}}`` over every import statement but the lazy viz ones."""
    out: dict[str, set[tuple[str, int]]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        found: set[tuple[str, int]] = set()

        def visit(node: ast.AST, function: str | None, name=name, path=path, found=found) -> None:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                function = node.name
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _resolve(name, node, path.name == "__init__.py"):
                    target = _known(target, modules)
                    if target is None or target == name:
                        continue
                    if function in LAZY_VIZ_FUNCTIONS and _top(target) == "viz":
                        continue
                    found.add((target, node.lineno))
            for child in ast.iter_child_nodes(node):
                visit(child, function)

        visit(tree, None)
        out[name] = found
    return out


def _known(target: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``target`` that is a module of the package."""
    parts = target.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def _top(module: str) -> str:
    return module.split(".")[0]


def _layer(module: str) -> int:
    for name in (module, _top(module)):
        for i, layer in enumerate(LAYERS):
            if name in layer:
                return i
    raise AssertionError(f"module {module!r} is in no layer: add it to LAYERS in {__file__}")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


@pytest.fixture(scope="module")
def imports():
    return _imports(_modules())


def test_every_module_is_in_a_layer():
    for module in _modules():
        _layer(module)
    tops = {_top(module) for module in _modules()}
    stale = sorted(name for layer in LAYERS for name in layer if name not in tops)
    assert not stale, f"LAYERS names modules that do not exist: {stale}"


def test_no_import_cycles(imports):
    # a package's __init__ importing its own submodules is the package, not a cycle: drop package -> child edges
    graph = {m: {t for t, _ in found if not t.startswith(m + ".")} for m, found in imports.items()}
    assert _cycles(graph) == []


def test_no_upward_imports(imports):
    upward = [f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)}) at line {line}"
              for m, found in imports.items() for t, line in sorted(found) if _layer(t) > _layer(m)]
    assert upward == []


def test_the_math_imports_no_model_code(imports):
    math_modules = [m for m in imports if _layer(m) <= 1]
    assert math_modules, "the math layer is empty?"
    for m in math_modules:
        assert {t for t, _ in imports[m]} <= {x for x in imports if _layer(x) <= 1}, m


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The checker itself can fail: a made-up cycle and an upward edge are found."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("from ..causal.interventions import x\nfrom . import cache\n")
    found = [t for node in tree.body for t in _resolve("probes.embedding", node, False)]
    assert "causal.interventions" in found and "probes.cache" in found
    assert _layer("causal.interventions") > _layer("probes.embedding")
