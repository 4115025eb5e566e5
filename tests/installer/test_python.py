"""Tests of installer.python: finding the Python interpreter that QGIS runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deeplandcover.installer import python
from deeplandcover.installer.errors import InstallError

from .installer_helpers import PY, isolated, script  # noqa: F401  (fixtures)


# -- the interpreter ------------------------------------------------------------------------------
def test_find_python_is_this_interpreter_in_a_plain_python():
    exe = python.find_python()
    out = subprocess.run(
        [exe, "-c", "import sys; print(sys.version_info[:2], sys.prefix)"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"{tuple(sys.version_info[:2])} {sys.prefix}"


def test_find_python_inside_a_qgis_binary(monkeypatch, tmp_path):
    """sys.executable is the QGIS binary (QGIS.app layout): the Python in Contents/MacOS/bin is found,
    a python3 of another version next to it is rejected."""
    macos = tmp_path / "QGIS.app" / "Contents" / "MacOS"
    (macos / "bin").mkdir(parents=True)
    qgis = script(macos, "QGIS", "exit 1")
    real = Path(getattr(sys, "_base_executable", sys.executable))
    (macos / "bin" / PY).symlink_to(real)
    script(macos / "bin", f"python{sys.version_info[0]}", 'echo "2 7"; echo /old')  # wrong version, tried after
    prefix = tmp_path / "QGIS.app" / "Contents" / "Frameworks"
    for attr in ("executable", "_base_executable"):
        monkeypatch.setattr(sys, attr, str(qgis), raising=False)
    for attr in ("prefix", "exec_prefix", "base_prefix", "base_exec_prefix"):
        monkeypatch.setattr(sys, attr, str(prefix))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv(python.ENV_PYTHON, raising=False)

    assert python.find_python() == str(macos / "bin" / PY)
    assert str(qgis) not in python.interpreter_candidates()


def test_find_python_error_says_what_was_tried(monkeypatch, tmp_path):
    real = str(Path(getattr(sys, "_base_executable", sys.executable)))
    bindir = tmp_path / "OSGeo4W" / "bin"
    qgis = script(bindir, "qgis-bin", "exit 1")
    script(bindir, PY, 'echo "2 7"; echo /old')
    for attr in ("executable", "_base_executable"):
        monkeypatch.setattr(sys, attr, str(qgis), raising=False)
    for attr in ("prefix", "exec_prefix", "base_prefix", "base_exec_prefix"):
        monkeypatch.setattr(sys, attr, str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv(python.ENV_PYTHON, raising=False)
    with pytest.raises(InstallError, match=r"(?s)Could not find the Python.*Python 2\.7.*DLC_PYTHON"):
        python.find_python()
    monkeypatch.setenv(python.ENV_PYTHON, real)
    assert python.find_python() == real
