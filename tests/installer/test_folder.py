"""Tests of installer.folder: the plugin's packages folder per Python version and its place on sys.path."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deeplandcover.installer import folder

from .installer_helpers import HOOK, PY, isolated  # noqa: F401  (fixtures)


# -- folder, sys.path -----------------------------------------------------------------------------
def test_packages_dir_per_python_version(monkeypatch, tmp_path, isolated):
    assert folder.packages_dir() == isolated / PY
    monkeypatch.delenv(folder.ENV_ROOT)
    assert folder.packages_dir(tmp_path / "profile") == tmp_path / "profile" / "deeplandcover" / PY
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert folder.packages_dir() == tmp_path / "xdg" / "deeplandcover" / PY


def test_activate_appends_after_site_packages_and_refreshes_caches(isolated):
    target = folder.packages_dir()
    assert not folder.activate()  # no folder yet: sys.path unchanged
    assert str(target) not in sys.path
    import importlib

    with pytest.raises(ImportError):
        importlib.import_module("dlc_probe_late")
    target.mkdir(parents=True)
    (target / "dlc_probe_late.py").write_text("VALUE = 42\n")
    assert folder.activate()
    assert sys.path[-1] == str(target)
    site_dirs = [i for i, p in enumerate(sys.path) if p.endswith(("site-packages", "dist-packages"))]
    assert site_dirs and max(site_dirs) < sys.path.index(str(target))
    assert importlib.import_module("dlc_probe_late").VALUE == 42
    folder.activate()
    assert sys.path.count(str(target)) == 1


def test_plugin_entry_puts_the_folder_on_sys_path(isolated):
    import deeplandcover

    folder.packages_dir().mkdir(parents=True)
    deeplandcover._add_plugin_packages()
    assert str(folder.packages_dir()) in sys.path


def test_the_folder_is_added_without_running_its_pth_files(isolated):
    """Also a folder that still holds one (an install of an older plugin version): the plugin's start-up
    (``deeplandcover._add_plugin_packages``) appends it without ``site.addsitedir``."""
    target = folder.packages_dir()
    target.mkdir(parents=True)
    (target / "distutils-precedence.pth").write_text(HOOK)
    code = (
        "import sys, deeplandcover; deeplandcover._add_plugin_packages(); "
        f"print(sys.path[-1] == {str(target)!r}, getattr(sys, 'dlc_pth_ran', False))"
    )
    env = {**os.environ, folder.ENV_ROOT: str(isolated)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "False"], out.stderr[-2000:]
