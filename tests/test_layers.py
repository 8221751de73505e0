"""The code reads in one direction: every import (module level or inside a function) goes down the layer
order, and no import cycle exists between tembench's modules.

    cli -> api -> report / check -> results -> runtime / evaluate / cost -> models -> registry / data -> errors

A module may import modules of its own layer or of a layer below it, never above.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tembench"

# (layer index, module name prefixes); a lower index is higher up
LAYERS = [
    (0, ("tembench.cli", "tembench.__main__")),
    (1, ("tembench.api", "tembench")),  # the facade; `tembench/__init__.py` re-exports it
    (2, ("tembench.report", "tembench.check", "tembench.ab_worker", "tembench.gates")),
    (3, ("tembench.results",)),
    # env: the fingerprint of the machine a measurement runs on (reads NVML through runtime.nvml)
    (4, ("tembench.runtime", "tembench.evaluate", "tembench.cost", "tembench.sanity", "tembench.env")),
    (5, ("tembench.models",)),
    (6, ("tembench.registry", "tembench.data", "tembench.grid")),
    (7, ("tembench.errors", "tembench._version", "tembench.signals")),
]
NAMES = ("cli", "api", "report/check", "results", "runtime/evaluate/cost", "models", "registry/data", "errors")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int:
    if module.startswith("tembench.cli_"):  # command modules beside cli.py
        return 0
    best, best_len = None, -1
    for index, prefixes in LAYERS:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = index, len(p)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS"
    return best


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """tembench modules that ``name`` imports anywhere in its file (lazy imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names]
            # `from tembench import gates` imports the module tembench.gates; `from tembench.x import f`, tembench.x
            targets = [t for t in subs if t in known] or [base]
        else:
            continue
        for t in targets:
            if not t.startswith("tembench"):
                continue
            while t and t not in known:  # `from tembench.x import function` -> tembench.x
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in sorted(g.items()):
        for dst in sorted(targets):
            if dst == "tembench" and src.startswith("tembench."):
                bad.append(f"{src} imports the package facade `tembench`")
            elif layer_of(dst) < layer_of(src):
                bad.append(f"{src} ({NAMES[layer_of(src)]}) imports {dst} ({NAMES[layer_of(dst)]})")
    return bad


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
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
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_import_goes_down_the_layers():
    bad = upward_imports(graph())
    assert not bad, "imports that go up the layer order:\n" + "\n".join(bad)


def test_no_import_cycle():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checker_sees_a_violation():
    """The test can fail: a lazy upward import and a two-module cycle are caught."""
    g = {"tembench.models.x": {"tembench.api"}, "tembench.api": {"tembench.models.x"}}
    assert upward_imports(g) == ["tembench.models.x (models) imports tembench.api (api)"]
    assert cycles(g) == [["tembench.api", "tembench.models.x"]]
