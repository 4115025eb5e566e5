"""The plugin's own package folder: where it is, keeping it apart from QGIS's Python, and ``sys.path``.

One folder per user and Python minor version (:func:`packages_dir`), appended to ``sys.path`` after
QGIS's own site-packages (:func:`activate`). pip writes into staging folders beside it
(:func:`staging_folder`), so that only a complete install is moved in.
"""

from __future__ import annotations

import importlib
import os
import shutil
import site
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import InstallError
from .names import same_path

#: Environment variable: root folder of the plugin's packages (the target is ``<root>/python3.X``).
ENV_ROOT = "DLC_PYTHON_PACKAGES"
#: Name prefix of the staging folders beside the target (pip's output, replaced files).
STAGING_PREFIX = ".staging-"

_STALE_STAGING_S = 24 * 3600
_WIN = sys.platform.startswith("win")


def packages_root(settings_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds the plugin's package folders (one per Python minor version).

    ``$DLC_PYTHON_PACKAGES`` when set; else ``<settings_dir>/deeplandcover`` when a QGIS settings
    folder is given; else per user: ``%LOCALAPPDATA%\\deeplandcover`` on Windows (not the roaming
    ``%APPDATA%``: torch is gigabytes), ``~/Library/Application Support/deeplandcover`` on macOS,
    ``$XDG_DATA_HOME/deeplandcover`` (``~/.local/share/deeplandcover``) elsewhere. The plugin passes no
    settings folder, so every QGIS profile and qgis_process share one copy of the packages.
    """
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env).expanduser().absolute()
    if settings_dir:
        return Path(settings_dir).absolute() / "deeplandcover"
    home = Path.home()
    if _WIN:
        base = Path(os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "deeplandcover"


def packages_dir(settings_dir: str | os.PathLike | None = None) -> Path:
    """The plugin's package folder for this Python: ``packages_root(settings_dir)/python3.X``."""
    return packages_root(settings_dir) / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def activate(target: str | os.PathLike | None = None) -> bool:
    """Put ``target`` (default :func:`packages_dir`) on ``sys.path`` after everything already there.

    Appending keeps QGIS's own site-packages first, so its NumPy and GDAL always win. The folder is
    appended as it is, not with :func:`site.addsitedir`: its ``.pth`` files are not read, so no package
    in it runs code whenever QGIS loads the plugin (setuptools' ``distutils-precedence.pth`` would put
    its import hook first in QGIS's import machinery; the installer also deletes them, see
    :func:`remove_pth_files`). Import caches (modules and ``importlib.metadata``) are refreshed so that
    packages installed a moment ago are found. Cheap: called when QGIS loads the plugin.

    Returns:
        True when the folder exists (and is now on ``sys.path``), False otherwise.
    """
    target = os.fspath(packages_dir() if target is None else target)
    if not os.path.isdir(target):
        return False
    if not any(same_path(target, p) for p in sys.path if p):
        sys.path.append(target)
    sys.path_importer_cache.pop(target, None)  # a "not a folder" entry cached before it existed
    importlib.invalidate_caches()
    return True


def remove_pth_files(folder: str | os.PathLike) -> list[str]:
    """Delete the ``*.pth`` files at the top of ``folder``; return their names.

    Python runs the ``import`` lines of a ``.pth`` file in a site folder at start-up; the plugin's folder
    is no site folder (:func:`activate`), and none of the plugin's packages needs one, so they are
    deleted rather than left for a later ``site.addsitedir`` of the folder to run.
    """
    removed = []
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return removed
    for name in entries:
        path = os.path.join(folder, name)
        if name.lower().endswith(".pth") and os.path.isfile(path):
            try:
                os.remove(path)
                removed.append(name)
            except OSError:
                pass
    return removed


def guard_target(target: Path) -> None:
    """Refuse a target folder that is (part of) the running Python's own installation."""
    own = [sys.prefix, sys.base_prefix, sys.exec_prefix]
    try:
        own += site.getsitepackages()
    except AttributeError:  # very old virtualenv
        pass
    own += [p for p in sys.path if p and os.path.basename(p) in ("site-packages", "dist-packages")]
    if any(same_path(target, o) for o in own) or (target / "os.py").exists():
        raise InstallError(
            f"Refusing to install into {target}: it is part of QGIS's own Python. Set {ENV_ROOT} to another folder."
        )


def clean_stale_staging(root: Path) -> None:
    """Remove staging folders in ``root`` older than a day (left by a QGIS that crashed or was killed)."""
    now = time.time()
    for entry in root.glob(STAGING_PREFIX + "*"):
        try:
            if now - entry.stat().st_mtime > _STALE_STAGING_S:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            pass


@contextmanager
def staging_folder(target: Path) -> Iterator[Path]:
    """A new, empty folder beside ``target`` for pip to write into; removed with its content on exit."""
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{target.name}-", dir=target.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
