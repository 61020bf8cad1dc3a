"""The package's imports go one way: no cycle, and no package imports from a layer above it.

Every ``import`` is read with ``ast``, at module level and inside functions alike (an import
inside a function is still a dependency).  Layers are whole packages (or top-level modules),
bottom to top:

    0  utils, config_groups, metrics,        plain functions and modules, no data
       decoding, callbacks
    1  data, demo                            raw files -> sequences, item texts, embeddings
    2  tokenizers                            item embeddings -> semantic IDs
    3  datamodule                            the DataModule (calls the tokenizer stage)
    4  models                                recommenders
    5  cli, lightning_cli, run_checks,       command line, sweeps, reports, serving
       run_dirs, sweep, report, serving

A package may import from its own layer or any lower one, and the graph of packages (every
module mapped to its top-level package) has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "llada_rec"
NAME = "llada_rec"

#: One layer per top-level package or module of ``llada_rec``; nothing finer.
LAYERS = {
    "llada_rec.utils": 0,
    "llada_rec.config_groups": 0,
    "llada_rec.metrics": 0,
    "llada_rec.decoding": 0,
    "llada_rec.callbacks": 0,
    "llada_rec.data": 1,
    "llada_rec.demo": 1,
    "llada_rec.tokenizers": 2,
    "llada_rec.datamodule": 3,
    "llada_rec.models": 4,
    "llada_rec.cli": 5,
    "llada_rec.lightning_cli": 5,
    "llada_rec.run_checks": 5,
    "llada_rec.run_dirs": 5,
    "llada_rec.legacy_args": 5,
    "llada_rec.sweep": 5,
    "llada_rec.report": 5,
    "llada_rec.serving": 5,
    "llada_rec.__main__": 5,
    "llada_rec": 5,  # the package itself
}


def module_files() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package modules ``name`` imports (``from X import y`` counts X.y when that is a module)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            if target != name and (target == NAME or target.startswith(NAME + ".")):
                while target not in modules:  # e.g. `import llada_rec.models.base.DataInfo` (not a module)
                    target = target.rsplit(".", 1)[0]
                if target != name:
                    found.add(target)
    return found


def package_of(module: str) -> str:
    """``llada_rec.data.readers.common`` -> ``llada_rec.data``; the package itself stays."""
    return ".".join(module.split(".")[:2])


def layer_of(module: str) -> int:
    return LAYERS[package_of(module)]


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for a, targets in import_graph().items():
        graph.setdefault(package_of(a), set()).update(package_of(b) for b in targets if package_of(b) != package_of(a))
    return graph


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def test_every_package_has_a_layer():
    packages = {package_of(module) for module in import_graph()}
    assert not packages - set(LAYERS), f"packages without a layer: {sorted(packages - set(LAYERS))}"
    assert not set(LAYERS) - packages, f"layers of packages that do not exist: {sorted(set(LAYERS) - packages)}"


def test_no_upward_imports():
    upward = sorted(
        f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
        for a, targets in import_graph().items()
        for b in targets
        if layer_of(b) > layer_of(a)
    )
    assert not upward, "upward imports:\n" + "\n".join(upward)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles_between_modules():
    assert not find_cycles(import_graph()), f"import cycles: {find_cycles(import_graph())}"


def test_no_import_cycles_between_packages():
    assert not find_cycles(package_graph()), f"package cycles: {find_cycles(package_graph())}"


def test_the_checker_sees_cycles_and_function_level_imports(tmp_path):
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from llada_rec.models.base import DataInfo\n    import llada_rec.cli\n")
    assert imports_of("llada_rec.x", source, {"llada_rec.models.base", "llada_rec.cli"}) == {"llada_rec.models.base", "llada_rec.cli"}
