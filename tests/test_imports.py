"""Dependency direction, one rule per package (DESIGN.md):

* ``core`` never imports qgis (it runs in scripts, tests and Dask workers);
* ``inference`` (but ``inference/batch``), ``change``, ``assessment``, ``chips``, ``raster``, ``preprocessing``
  and the leaves import no torch: an analyst who only runs models needs numpy, rasterio and onnxruntime;
* only ``training`` (and ``models/``) import torch; only ``inference/batch`` imports Dask;
* loading the Processing provider imports neither torch nor onnxruntime, nor rasterio, geopandas and the other
  optional packages (qgis_process loads it on every call; a bare QGIS lists every algorithm).

Each rule is checked twice: statically (every ``import``, also inside functions) and by importing every module
of the package with the forbidden packages made unimportable.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1]
CORE = PLUGIN / "core"

BLOCKER = textwrap.dedent(
    """
    import sys, importlib, importlib.abc, pkgutil
    class Block(importlib.abc.MetaPathFinder):
        def __init__(self, names): self.names = names
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in self.names:
                raise ImportError(f'{name} is blocked in this test')
    """
)

#: package (dotted, under core) -> top-level distributions its modules must never import
RULES: dict[str, set[str]] = {
    "": {"qgis", "PyQt5", "PyQt6", "torch", "dask", "distributed"},  # the leaves: errors, feedback, deps, ...
    "raster": {"qgis", "PyQt5", "PyQt6", "torch", "dask", "distributed"},
    "preprocessing": {"qgis", "PyQt5", "PyQt6", "torch", "dask", "distributed"},
    "chips": {"qgis", "PyQt5", "PyQt6", "torch", "dask", "distributed"},
    "inference": {"qgis", "PyQt5", "PyQt6", "torch", "dask", "distributed"},
    "inference.batch": {"qgis", "PyQt5", "PyQt6", "torch"},
    "change": {"qgis", "PyQt5", "PyQt6", "torch", "dask", "distributed"},
    "assessment": {"qgis", "PyQt5", "PyQt6", "torch", "dask", "distributed"},
    "training": {"qgis", "PyQt5", "PyQt6", "dask", "distributed"},
    "installer": {"qgis", "PyQt5", "PyQt6", "torch", "dask", "distributed"},
}


def _package_of(path: Path) -> str:
    rel = path.relative_to(CORE).parent.parts
    pkg = ".".join(rel)
    return pkg if pkg in RULES else ".".join(rel[:1])


def _modules(pkg: str) -> list[Path]:
    base = CORE / pkg.replace(".", "/") if pkg else CORE
    files = sorted(base.glob("*.py"))
    return [p for p in files if _package_of(p) == pkg]


def _imported_tops(path: Path) -> set[str]:
    tops = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


def test_every_core_module_belongs_to_a_rule():
    for p in CORE.rglob("*.py"):
        assert _package_of(p) in RULES, f"{p.relative_to(PLUGIN)}: add its package to RULES"


@pytest.mark.parametrize("pkg", sorted(RULES), ids=lambda p: p or "core-leaves")
def test_package_imports_follow_the_rule_statically(pkg):
    bad = [
        f"{p.relative_to(PLUGIN)} imports {sorted(_imported_tops(p) & RULES[pkg])}"
        for p in _modules(pkg)
        if _imported_tops(p) & RULES[pkg]
    ]
    assert not bad, "\n".join(bad)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("pkg", sorted(RULES), ids=lambda p: p or "core-leaves")
def test_package_modules_import_with_the_forbidden_packages_blocked(pkg):
    mods = [
        "deeplandcover.core" + ("." + pkg if pkg else "") + ("." + p.stem if p.stem != "__init__" else "")
        for p in _modules(pkg)
        if p.stem != "__main__"
    ]  # a __main__ runs its CLI on import
    res = _run(
        f"""
        blocked = {sorted(RULES[pkg])!r}
        sys.meta_path.insert(0, Block(set(blocked)))
        for m in {mods!r}:
            importlib.import_module(m)
        leaked = [b for b in blocked if b in sys.modules]
        assert not leaked, leaked
        print('ok')
        """
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]


#: Imported only when an algorithm runs, never when the provider loads (tests/installer/test_bare_qgis.py
#: lists the algorithms with them blocked).
PROVIDER_HEAVY = (
    "torch", "onnxruntime", "onnx", "matplotlib", "sklearn", "dask", "distributed",
    "rasterio", "geopandas", "pandas", "shapely", "pyproj", "scipy", "pyogrio", "fiona",
)  # fmt: skip


def test_provider_loads_without_torch_or_onnxruntime():
    res = _run(
        f"""
        import os
        os.environ['QT_QPA_PLATFORM'] = 'offscreen'
        from qgis.core import QgsApplication
        app = QgsApplication([], False); app.initQgis()
        qgis_own = set(sys.modules)  # QGIS 3.40's qgis.core imports shapely itself
        from deeplandcover.provider.provider import DeepLandCoverProvider
        p = DeepLandCoverProvider()
        QgsApplication.processingRegistry().addProvider(p)
        names = sorted(a.name() for a in p.algorithms())
        heavy = [m for m in {PROVIDER_HEAVY!r} if m in sys.modules and m not in qgis_own]
        print('ALGS', names, 'HEAVY', heavy)
        assert not heavy, heavy
        print('ok')
        """
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stdout + res.stderr
