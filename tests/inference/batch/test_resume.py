"""core.inference.batch.resume: task fingerprints, sidecars and the finished / empty / stale decision."""

from __future__ import annotations

import os
from pathlib import Path

from deeplandcover.core.inference.batch.plan import BatchTask
from deeplandcover.core.inference.batch.resume import (
    is_finished,
    output_settings,
    remove_stale,
    sidecar_path,
    task_fingerprint,
    write_sidecar,
)
from deeplandcover.core.inference.options import ClassifyOptions


def _task(tmp_path: Path) -> BatchTask:
    src = tmp_path / "in.tif"
    src.write_bytes(b"raster")
    return BatchTask("in_class", (str(src),), str(tmp_path / "in_class.tif"), (0, 0, 8, 8), (0, 0, 12, 12))


def test_finished_only_with_the_same_fingerprint_and_the_output_in_place(tmp_path):
    task = _task(tmp_path)
    fp = task_fingerprint(task, "abc", {"tile": 64, "overlap": 16})
    assert fp["inputs"][0][:2] == [task.inputs[0], 6] and fp["block"] == (0, 0, 8, 8)
    assert is_finished(task, fp) is False  # no sidecar yet
    Path(task.output).write_bytes(b"done")
    write_sidecar(task, fp, empty=False, info={"pid": 1})
    assert sidecar_path(task.output) == tmp_path / "in_class.tif.json" and sidecar_path(task.output).is_file()
    assert is_finished(task, fp) is True  # tuples in the fingerprint compare equal to the JSON lists
    assert is_finished(task, task_fingerprint(task, "other model", {"tile": 64, "overlap": 16})) is False
    assert is_finished(task, task_fingerprint(task, "abc", {"tile": 64, "overlap": 8})) is False
    Path(task.output).unlink()
    assert is_finished(task, fp) is False  # the sidecar alone is not a finished output


def test_a_changed_input_makes_the_output_stale(tmp_path):
    task = _task(tmp_path)
    fp = task_fingerprint(task, "abc", {})
    Path(task.output).write_bytes(b"done")
    write_sidecar(task, fp, empty=False, info={})
    os.utime(task.inputs[0], ns=(0, 123))  # another mtime
    assert is_finished(task, task_fingerprint(task, "abc", {})) is False


def test_empty_area_counts_as_finished_without_an_output(tmp_path):
    task = _task(tmp_path)
    fp = task_fingerprint(task, "abc", {})
    write_sidecar(task, fp, empty=True, info={})
    assert is_finished(task, fp) is None and not Path(task.output).exists()
    sidecar_path(task.output).write_text("{not json", encoding="utf-8")
    assert is_finished(task, fp) is False  # a broken sidecar means: compute again


def test_remove_stale_deletes_only_leftovers(tmp_path):
    task = _task(tmp_path)
    leftovers = [tmp_path / ".in_class.tmp-1234", tmp_path / ".in_class.tif.tmp-99", tmp_path / ".in_class.halo-7"]
    for p in leftovers:
        p.write_bytes(b"partial")
    Path(task.output).write_bytes(b"done")
    remove_stale(task)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "in_class.tif"]


def test_output_settings_keep_what_changes_the_output(tmp_path):
    a = output_settings(ClassifyOptions(batch_size=2, threads=1, device="cpu"), 64, 16)
    b = output_settings(ClassifyOptions(batch_size=8, threads=4), 64, 16)
    assert a == b == {"tile": 64, "overlap": 16, "blending": "gaussian", "tta": False, "band_map": None, "mask": None}
    c = output_settings(ClassifyOptions(blending="center", tta=True, band_map=[3, 2, 1]), 128, 0)
    assert (c["tile"], c["overlap"], c["blending"], c["tta"], c["band_map"]) == (128, 0, "center", True, [3, 2, 1])
    geoms = [{"type": "Point", "coordinates": [0, 0]}]
    assert (
        output_settings(ClassifyOptions(mask=geoms), 64, 16)["mask"]
        == output_settings(ClassifyOptions(mask=list(geoms)), 64, 16)["mask"]
        != output_settings(ClassifyOptions(mask=[{"type": "Point", "coordinates": [1, 0]}]), 64, 16)["mask"]
    )
