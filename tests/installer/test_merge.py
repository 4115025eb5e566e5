"""Tests of installer.merge: moving a staging folder into the target, replacing older copies, all or nothing."""

from __future__ import annotations

import os

import pytest

from deeplandcover.installer import merge as merge_module
from deeplandcover.installer.dists import scan
from deeplandcover.installer.errors import InstallError
from deeplandcover.installer.merge import merge

from .installer_helpers import dist_infos, isolated, make_wheel, unpack_wheel  # noqa: F401  (fixtures)


def test_a_new_target_is_the_staging_folder(tmp_path):
    staging = unpack_wheel(make_wheel(tmp_path / "w", "dlc-a", "1.0"), tmp_path / ".staging-1")
    assert merge(staging, tmp_path / "target", scan(staging)) == []
    assert dist_infos(tmp_path / "target") == {"dlc_a-1.0.dist-info"} and not staging.exists()


def test_an_upgrade_replaces_the_old_files_and_keeps_the_others(tmp_path):
    target = unpack_wheel(make_wheel(tmp_path / "w1", "dlc-a", "1.0", files={"old.py": ""}), tmp_path / "target")
    unpack_wheel(make_wheel(tmp_path / "w1", "dlc-b", "1.0"), target)
    staging = unpack_wheel(make_wheel(tmp_path / "w2", "dlc-a", "2.0"), tmp_path / ".staging-2")
    replaced = merge(staging, target, scan(staging))
    assert [(d.key, d.version) for d in replaced] == [("dlc-a", "1.0")]
    assert dist_infos(target) == {"dlc_a-2.0.dist-info", "dlc_b-1.0.dist-info"}
    assert not (target / "dlc_a" / "old.py").exists() and "2.0" in (target / "dlc_a" / "__init__.py").read_text()
    assert not [p for p in staging.rglob("*") if p.is_file()]  # every file moved in (install removes the folder)
    assert [p.name for p in tmp_path.glob(".staging-*")] == [".staging-2"]  # the trash of old files is gone


def test_a_failed_move_leaves_the_target_as_it_was(tmp_path, monkeypatch):
    target = unpack_wheel(make_wheel(tmp_path / "w1", "dlc-a", "1.0", files={"old.py": ""}), tmp_path / "target")
    before = sorted(p.relative_to(target).as_posix() for p in target.rglob("*"))
    staging = unpack_wheel(make_wheel(tmp_path / "w2", "dlc-a", "2.0"), tmp_path / ".staging-3")
    real_replace = os.replace

    def refuse_moving_in(src, dst):
        if ".staging-3" in str(src):
            raise PermissionError(13, "in use", str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(merge_module.os, "replace", refuse_moving_in)
    with pytest.raises(InstallError, match="left as it was; close QGIS"):
        merge(staging, target, scan(staging))
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == before
