"""Tests of installer.dists: the distributions of a --target folder read from their metadata, and deleting one."""

from __future__ import annotations

from deeplandcover.installer.dists import delete_dist, scan

from .installer_helpers import fake_dist, isolated, make_wheel, unpack_wheel  # noqa: F401  (fixtures)


def test_scan_reads_names_files_and_import_names(tmp_path):
    site = unpack_wheel(
        make_wheel(tmp_path / "w", "Dlc_Probe", "1.5", files={"sub/x.py": "X = 1\n"}, module="dlcprobe"),
        tmp_path / "site",
    )
    fake_dist(site, "dlc-meta-only", "0.1")  # no RECORD, no top_level.txt
    by_key = {d.key: d for d in scan(site)}
    assert set(by_key) == {"dlc-probe", "dlc-meta-only"}
    probe = by_key["dlc-probe"]
    assert (probe.name, probe.version, probe.info_dir) == ("Dlc_Probe", "1.5", "Dlc_Probe-1.5.dist-info")
    assert {"dlcprobe/__init__.py", "dlcprobe/sub/x.py", "Dlc_Probe-1.5.dist-info/RECORD"} <= probe.files
    assert probe.top_levels == {"dlcprobe"}
    assert by_key["dlc-meta-only"].files == {"dlc_meta_only-0.1.dist-info/METADATA"}
    assert scan(tmp_path / "missing") == []


def test_delete_removes_the_files_and_the_folders_left_empty(tmp_path):
    site = unpack_wheel(make_wheel(tmp_path / "w", "dlc-a", "1.0", files={"deep/er/x.py": ""}), tmp_path / "site")
    unpack_wheel(make_wheel(tmp_path / "w", "dlc-b", "1.0"), site)
    (site / "dlc_a" / "deep" / "__pycache__").mkdir()
    (site / "dlc_a" / "user_notes.txt").write_text("not from the wheel")
    a = next(d for d in scan(site) if d.key == "dlc-a")
    delete_dist(site, a)
    assert [d.key for d in scan(site)] == ["dlc-b"]
    assert not (site / "dlc_a" / "deep").exists()  # empty but for __pycache__: removed
    assert (site / "dlc_a" / "user_notes.txt").is_file()  # a file no distribution owns stays
    assert (site / "dlc_b" / "__init__.py").is_file()
