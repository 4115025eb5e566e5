"""The Python interpreter that runs QGIS, found and verified: the one pip must run in.

Inside QGIS ``sys.executable`` is usually the QGIS binary, not a Python, so the interpreter is
searched next to it and in the prefixes of the running Python, and each candidate is run to check
that it is the same Python (version, then prefix).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from .errors import InstallError
from .names import same_path

#: Environment variable: path of the Python interpreter to use, when :func:`find_python` cannot find it.
ENV_PYTHON = "DLC_PYTHON"

_WIN = sys.platform.startswith("win")
_NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)


def _looks_like_python(exe: str | None) -> bool:
    if not exe:
        return False
    name = os.path.basename(exe).lower()
    if name.endswith(".exe"):
        name = name[:-4]
    return re.fullmatch(r"python(\d+(\.\d+)?)?", name) is not None


def _python_names() -> list[str]:
    major, minor = sys.version_info[:2]
    if _WIN:
        return ["python.exe", f"python{major}.exe", f"python{major}{minor}.exe"]
    return [f"python{major}.{minor}", f"python{major}", "python"]


def interpreter_candidates() -> list[str]:
    """Executables that may be the Python QGIS runs, most likely first (existing files only).

    ``$DLC_PYTHON`` first; then ``sys.executable`` and ``sys._base_executable`` when they are a
    Python (in a plain interpreter or a venv); then ``python3.X``/``python3``/``python`` (Windows:
    ``python.exe``) next to them, in their ``bin`` folder (QGIS.app: ``Contents/MacOS/bin``), in
    ``sys.exec_prefix``, ``sys.prefix``, ``sys.base_exec_prefix``, ``sys.base_prefix`` and their
    ``bin`` folders (OSGeo4W: ``apps/Python3XX/python.exe``); last the same names on ``PATH``.
    """
    first: list[str] = []
    if os.environ.get(ENV_PYTHON):
        first.append(os.environ[ENV_PYTHON])
    exe = sys.executable or ""
    base_exe = getattr(sys, "_base_executable", None) or ""
    first += [e for e in (exe, base_exe) if _looks_like_python(e)]
    dirs: list[str] = []
    for d in (os.path.dirname(exe), os.path.dirname(base_exe)):
        if d:
            dirs += [d, os.path.join(d, "bin")]
    for prefix in (sys.exec_prefix, sys.prefix, sys.base_exec_prefix, sys.base_prefix):
        if prefix:
            dirs += [prefix, os.path.join(prefix, "bin")]
    names = _python_names()
    found = first + [os.path.join(d, n) for d in dirs for n in names]
    found += [w for w in (shutil.which(n) for n in names) if w]
    out: list[str] = []
    for c in found:
        if os.path.isfile(c) and not any(same_path(c, o) for o in out):
            out.append(c)
    return out


def _probe(exe: str) -> tuple[tuple[int, int], str] | None:
    """``((major, minor), sys.prefix)`` of the interpreter ``exe``, or None when it does not run."""
    code = "import sys; print('%d %d' % sys.version_info[:2]); print(sys.prefix)"
    try:
        res = subprocess.run([exe, "-c", code], capture_output=True, text=True, timeout=60, creationflags=_NO_WINDOW)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or len(lines) < 2:
        return None
    try:
        major, minor = (int(x) for x in lines[0].split())
    except ValueError:
        return None
    return (major, minor), lines[1].strip()


def find_python() -> str:
    """The Python interpreter that runs QGIS (the one pip must run in).

    Each candidate of :func:`interpreter_candidates` is run; the first whose ``sys.version_info[:2]``
    and ``sys.prefix`` equal ours wins, else the first with the same version.

    Returns:
        The interpreter's path.

    Raises:
        InstallError: no candidate runs with this Python's version; says what was tried and that
            ``DLC_PYTHON`` can name it.
    """
    want = tuple(sys.version_info[:2])
    fallback = None
    tried = []
    for exe in interpreter_candidates():
        info = _probe(exe)
        if info is None:
            tried.append(f"{exe} (does not run)")
            continue
        version, prefix = info
        if version != want:
            tried.append(f"{exe} (Python {version[0]}.{version[1]})")
            continue
        if same_path(prefix, sys.prefix):
            return exe
        fallback = fallback or exe
    if fallback:
        return fallback
    raise InstallError(
        f"Could not find the Python {want[0]}.{want[1]} interpreter that QGIS runs (QGIS runs as "
        f"{sys.executable}; prefix {sys.prefix}). Tried: {'; '.join(tried) or 'no candidate exists'}. "
        f"Set the environment variable {ENV_PYTHON} to its path (e.g. C:\\OSGeo4W\\apps\\Python312\\python.exe, "
        "/Applications/QGIS.app/Contents/MacOS/bin/python3 or /usr/bin/python3) and try again."
    )
