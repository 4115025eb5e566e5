"""The code's shape: modules of one sitting, functions of one screen, no import cycles in core.

Limits (issue "One home per concept"): a module has at most ``MAX_MODULE_LINES`` lines, a function at most
``MAX_FUNCTION_LINES`` lines of code (from ``def`` to its end, docstring left out). ``python
tests/test_structure.py`` prints every offender.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "algorithms", "models", "provider", "installer")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _files() -> list[Path]:
    files = [p for d in PACKAGES for p in sorted((PLUGIN / d).rglob("*.py")) if "__pycache__" not in p.parts]
    return files + [PLUGIN / "plugin.py", PLUGIN / "__init__.py"]


def long_modules() -> list[str]:
    out = []
    for p in _files():
        n = len(p.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            out.append(f"{p.relative_to(PLUGIN)}: {n} lines (at most {MAX_MODULE_LINES})")
    return out


def _code_lines(node: ast.AST) -> int:
    body = node.body
    start = node.lineno
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(getattr(body[0], "value", None), ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        doc = body[0].end_lineno - body[0].lineno + 1
    else:
        doc = 0
    return node.end_lineno - start + 1 - doc


def long_functions() -> list[str]:
    out = []
    for p in _files():
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(node)
                if n > MAX_FUNCTION_LINES:
                    out.append(
                        f"{p.relative_to(PLUGIN)}:{node.lineno} {node.name}: {n} code lines "
                        f"(at most {MAX_FUNCTION_LINES})"
                    )
    return out


def _module_name(p: Path) -> str:
    parts = list(p.relative_to(PLUGIN).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_import_graph() -> dict[str, set[str]]:
    """Module -> the core modules it imports (at module level or inside functions)."""
    graph: dict[str, set[str]] = {}
    for p in sorted((PLUGIN / "core").rglob("*.py")):
        mod = _module_name(p)
        pkg = mod.split(".") if p.name == "__init__.py" else mod.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg[: len(pkg) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
                deps |= {n for n in names if n.startswith("core")}
        graph[mod] = deps
    return graph


def import_cycles() -> list[list[str]]:
    graph = core_import_graph()
    known = set(graph)

    def norm(m: str) -> str | None:
        while m and m not in known:
            m = m.rpartition(".")[0]
        return m or None

    edges = {m: {d for d in (norm(x) for x in ds) if d and d != m} for m, ds in graph.items()}
    # a package's __init__ importing its own modules is not a cycle worth reporting
    return [c for c in _cycles(edges) if not all(x.startswith(c[0]) for x in c)]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The cycles a depth-first walk of ``edges`` (node -> the nodes it imports) meets, each as its path."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d) :] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    return cycles


def package_cycles() -> list[list[str]]:
    """Cycles between core's packages and leaf modules (``core.chips``, ``core.classes``, ...), each module's
    imports counted for its package: a two-way link such as ``classes`` -> ``raster.grid`` ->
    ``classes`` is reported even when no single module closes the circle."""
    graph = core_import_graph()

    def pkg(m: str) -> str:
        return ".".join(m.split(".")[:2])

    edges: dict[str, set[str]] = {}
    for m, ds in graph.items():
        edges.setdefault(pkg(m), set()).update(pkg(d) for d in ds if pkg(d) != pkg(m) and pkg(d) != "core")
    return _cycles(edges)


def test_modules_fit_one_sitting():
    assert not long_modules(), "\n".join(long_modules())


def test_functions_fit_one_screen():
    assert not long_functions(), "\n".join(long_functions())


def test_core_has_no_import_cycle():
    cycles = import_cycles()
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_core_packages_link_one_way():
    cycles = package_cycles()
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_package_cycle_check_sees_a_two_way_link(monkeypatch):
    """The check itself: a made-up link back from ``classes`` to ``raster`` is found."""
    real = core_import_graph()
    fake = {**real, "core.classes": real["core.classes"] | {"core.raster.grid"}}
    monkeypatch.setitem(globals(), "core_import_graph", lambda: fake)
    assert any({"core.classes", "core.raster"} <= set(c) for c in package_cycles())


if __name__ == "__main__":
    cycles = import_cycles() + package_cycles()
    problems = long_modules() + long_functions() + [" -> ".join(c) for c in cycles]
    print("\n".join(problems) or "no problems")
    sys.exit(1 if problems else 0)


def test_every_python_file_parses_on_this_python():
    """Newer syntax (e.g. 3.12's nested same-quote f-strings) breaks QGIS builds on older Pythons; ruff lets it pass.

    Run under each CI Python (3.11 on Debian 12, 3.13, 3.14), this parses every file: plugin, tests and tools.
    """
    bad = []
    for p in sorted(PLUGIN.rglob("*.py")):
        if any(part.startswith(".") or part in ("__pycache__", "matrix_output", "build", "dist") for part in p.parts):
            continue
        try:
            ast.parse(p.read_text(encoding="utf-8"), filename=str(p))
        except SyntaxError as e:
            bad.append(f"{p.relative_to(PLUGIN)}:{e.lineno}: {e.msg}")
    assert not bad, f"not valid Python {sys.version_info[0]}.{sys.version_info[1]}:\n" + "\n".join(bad)
