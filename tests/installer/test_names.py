"""Tests of installer.names: distribution names and paths compared as pip and the operating system compare them."""

from __future__ import annotations

import os

from deeplandcover.installer.names import canonical_name, same_path

from .installer_helpers import isolated  # noqa: F401  (fixtures)


def test_canonical_names_follow_pep_503():
    assert canonical_name("PyQt5_sip") == "pyqt5-sip"
    assert canonical_name("zope.interface") == canonical_name("Zope__Interface") == "zope-interface"
    assert canonical_name("onnxruntime-gpu") == "onnxruntime-gpu"


def test_same_path_after_normalisation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert same_path(tmp_path / "a" / ".." / "b", "b") and same_path(str(tmp_path), tmp_path / ".")
    assert not same_path(tmp_path / "a", tmp_path / "b")
    assert same_path(tmp_path / "A", tmp_path / "a") is (os.path.normcase("A") == "a")  # case-insensitive on Windows
