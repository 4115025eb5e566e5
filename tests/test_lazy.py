"""core.lazy: PEP 562 re-exports that import a stage's module on first use only."""

from __future__ import annotations

import sys
import types

import pytest

from deeplandcover.core.lazy import lazy_exports

PKG = "dlc_lazy_probe"


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package ``dlc_lazy_probe`` with a submodule ``heavy`` (``VALUE = 7``) re-exported lazily."""
    root = tmp_path / PKG
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "heavy.py").write_text("VALUE = 7\nOTHER = 8\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.invalidate_caches()
    pkg = importlib.import_module(PKG)
    pkg.__getattr__, pkg.__dir__ = lazy_exports(PKG, {"VALUE": ".heavy"})
    yield pkg
    for name in [m for m in sys.modules if m == PKG or m.startswith(PKG + ".")]:
        del sys.modules[name]


def test_a_name_imports_its_module_on_first_use_and_is_kept(package):
    assert f"{PKG}.heavy" not in sys.modules
    assert package.VALUE == 7
    assert f"{PKG}.heavy" in sys.modules and vars(package)["VALUE"] == 7  # now a plain attribute


def test_dir_lists_the_exports_before_they_are_imported(package):
    assert "VALUE" in dir(package) and "OTHER" not in dir(package)
    assert f"{PKG}.heavy" not in sys.modules


def test_a_name_not_exported_is_an_attribute_error(package):
    with pytest.raises(AttributeError, match=f"module '{PKG}' has no attribute 'OTHER'"):
        package.OTHER  # noqa: B018
    assert isinstance(package, types.ModuleType) and f"{PKG}.heavy" not in sys.modules
