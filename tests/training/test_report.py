"""The training output folder, the per-epoch log rows and line, the speed summary and training_log.csv."""

from __future__ import annotations

import csv

import pytest

from deeplandcover.core.training.report import (
    LOG_COLUMNS,
    EpochRun,
    create_output_folder,
    epoch_message,
    epoch_row,
    remove_empty_folders,
    speed_summary,
    write_log,
)

NAMES = ["water", "forest"]
METRICS = {"val_loss": 0.5, "oa": 0.9, "miou": 0.7, "f1": 0.8, "f1_per_class": [0.75, None]}


def test_created_folders_are_removed_deepest_first_while_empty(tmp_path) -> None:
    created = create_output_folder(tmp_path / "a" / "b" / "c")
    assert created == [tmp_path / "a" / "b" / "c", tmp_path / "a" / "b", tmp_path / "a"]
    assert create_output_folder(tmp_path / "a") == []  # exists: nothing created
    (tmp_path / "a" / "keep.txt").write_text("x")
    remove_empty_folders(created)
    assert not (tmp_path / "a" / "b").exists() and (tmp_path / "a" / "keep.txt").is_file()


def test_epoch_row_and_its_log_line() -> None:
    row = epoch_row(3, 0.25, METRICS, EpochRun(1e-3, 8, 12.0, chips_per_s=4.5, threads=2), NAMES)
    assert list(row)[: len(LOG_COLUMNS)] == list(LOG_COLUMNS)
    assert row["f1_water"] == 0.75 and row["f1_forest"] is None and row["threads"] == 2
    line = epoch_message(row, 10, NAMES, improved=True)
    assert line.startswith("Epoch 3/10: train loss 0.2500, val loss 0.5000, OA 0.900, mIoU 0.700, F1 0.800")
    assert "[water 0.75, forest n/a] *best*" in line and line.endswith("12.0 s, 4.5 chips/s, 2 threads")
    unmeasured = epoch_row(1, 0.3, METRICS, EpochRun(1e-3, 8, 5.0), NAMES)
    assert epoch_message(unmeasured, 10, NAMES, improved=False).endswith("forest n/a]")


def test_speed_summary_takes_medians_and_skips_unmeasured_epochs() -> None:
    hist = [
        {"seconds": 10.0, "chips_per_s": 2.0, "threads": 2},
        {"seconds": 30.0, "chips_per_s": None, "threads": None},
        {"seconds": 20.0, "chips_per_s": 4.0, "threads": 1},
    ]
    s = speed_summary(hist, busy_seconds=3.14159)
    assert s == {
        "seconds_per_epoch": 20.0,
        "chips_per_s": pytest.approx(3.0),
        "threads": [1, 2],
        "busy_seconds": 3.1,
        "total_seconds": 60.0,
    }
    assert speed_summary([])["seconds_per_epoch"] is None


def test_write_log_rounds_floats_and_leaves_undefined_scores_empty(tmp_path) -> None:
    row = epoch_row(1, 0.123456789, METRICS, EpochRun(1e-3, 8, 5.0), NAMES)
    path = tmp_path / "training_log.csv"
    write_log(path, [row], NAMES)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [*LOG_COLUMNS, "f1_water", "f1_forest"]
    assert rows[0]["train_loss"] == "0.123457" and rows[0]["f1_forest"] == "" and rows[0]["chips_per_s"] == ""
    assert [p.name for p in tmp_path.iterdir()] == ["training_log.csv"]  # no temporary file left
