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
}

#: the top-level ``installer/`` package (plugin plumbing, used by algorithms only): standard library, ``core``'s
#: leaves and pip in a subprocess; no qgis, so that it runs (and is tested) outside QGIS too
INSTALLER = PLUGIN / "installer"
INSTALLER_FORBIDDEN = {"qgis", "PyQt5", "PyQt6", "torch", "dask", "distributed", "onnxruntime", "rasterio"}


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
    _assert_imports_leave_out(mods, RULES[pkg])


def _assert_imports_leave_out(mods: list[str], blocked) -> None:
    """Importing ``mods`` in a fresh interpreter imports none of the top-level packages ``blocked``."""
    res = _run(
        f"""
        blocked = {sorted(blocked)!r}
        sys.meta_path.insert(0, Block(set(blocked)))
        for m in {mods!r}:
            importlib.import_module(m)
        leaked = [b for b in blocked if b in sys.modules]
        assert not leaked, leaked
        print('ok')
        """
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]


def test_installer_imports_no_qgis_torch_or_dask():
    files = sorted(INSTALLER.glob("*.py"))
    assert files, "installer/ is missing"
    found = {p: _imported_tops(p) & INSTALLER_FORBIDDEN for p in files}
    bad = [f"{p.relative_to(PLUGIN)} imports {sorted(tops)}" for p, tops in found.items() if tops]
    assert not bad, "\n".join(bad)
    mods = [f"deeplandcover.installer.{p.stem}" for p in files if p.stem != "__init__"]
    _assert_imports_leave_out(mods, INSTALLER_FORBIDDEN)


def test_core_never_imports_the_installer_or_the_plugin():
    """Dependency direction plugin -> provider -> algorithms -> core -> models: ``core`` reaches none above it."""
    up = {"installer", "algorithms", "provider", "plugin"}
    bad = []
    for p in sorted(CORE.rglob("*.py")):
        package = list(p.relative_to(PLUGIN).parent.parts)  # e.g. ["core", "chips"]
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:  # relative: resolve against the module's package, inside the plugin
                base = package[: len(package) - (node.level - 1)]
                target = [*base, *(node.module.split(".") if node.module else [])]
                names = [target] if node.module or base else [[a.name] for a in node.names]
            else:
                parts = (node.module or "").split(".")
                names = [parts[1:]] if parts[0] == "deeplandcover" else []
            bad += [f"{p.relative_to(PLUGIN)}:{node.lineno} imports {'.'.join(t)}" for t in names if t and t[0] in up]
    assert not bad, "\n".join(bad)


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


#: stage package -> the names its ``__init__`` re-exports (their entry point and options), at least these
STAGE_EXPORTS = {
    "inference": {"classify_pixels", "ClassifyOptions", "OutputPaths", "load_model", "InferenceModel"},
    "chips": {"export_training_tiles", "ExportOptions", "CleaningOptions", "load_chip_folder"},
    "training": {"train_model", "TrainConfig", "TrainResult"},
    "change": {"from_to_change", "FromToOptions", "change_vector_analysis", "CvaOptions", "ChangeModelOptions"},
    "assessment": {"compute_accuracy", "AccuracyOptions", "create_accuracy_points", "AccuracyPointsOptions"},
    "preprocessing": {"valid_mask", "parse_indices", "compute_indices", "apply_policy"},
}


@pytest.mark.parametrize("stage", sorted(STAGE_EXPORTS))
def test_stage_packages_reexport_their_entry_points_lazily(stage):
    """``from deeplandcover.core.<stage> import <entry point>`` works, gives the defining module's object, and
    importing the package alone imports none of its modules (nor torch, rasterio or geopandas)."""
    pkg = f"deeplandcover.core.{stage}"
    res = _run(
        f"""
        import importlib
        before = set(sys.modules)
        package = importlib.import_module({pkg!r})
        loaded = sorted(m for m in set(sys.modules) - before if m.startswith({pkg!r} + '.'))
        heavy = [m for m in ('torch', 'rasterio', 'geopandas') if m in sys.modules]
        assert not loaded and not heavy, (loaded, heavy)
        names = {sorted(STAGE_EXPORTS[stage])!r}
        assert set(names) <= set(package.__all__) and set(names) <= set(dir(package)), package.__all__
        for name in package.__all__:
            value = getattr(package, name)
            assert getattr(importlib.import_module(value.__module__), name) is value, name
        try:
            package.no_such_name
        except AttributeError as e:
            assert 'no_such_name' in str(e)
        else:
            raise AssertionError('an unknown name must raise AttributeError')
        print('ok')
        """
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stdout + res.stderr[-3000:]
