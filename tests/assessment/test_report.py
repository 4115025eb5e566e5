"""Accuracy reports: the confusion-matrix and metrics CSVs, JSON with undefined scores as null, the HTML page."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from deeplandcover.core.assessment.metrics import accuracy_scores
from deeplandcover.core.assessment.report import (
    write_matrix_csv,
    write_metrics_csv,
    write_metrics_json,
    write_report_html,
)

# class 3 is never predicted: its precision is undefined
CM = np.array([[5, 1, 0], [2, 7, 0], [0, 1, 0]], dtype=np.int64)


@pytest.fixture
def rep():
    return accuracy_scores(CM, [1, 2, 3], ["water", "forest", "urban"])


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_matrix_csv_has_names_and_totals(tmp_path, rep) -> None:
    rows = _rows(write_matrix_csv(rep, tmp_path / "m.csv"))
    assert rows[0] == ["reference \\ predicted", "water", "forest", "urban", "total"]
    assert rows[1] == ["water", "5", "1", "0", "6"] and rows[3] == ["urban", "0", "1", "0", "1"]
    assert rows[-1] == ["total", "7", "9", "0", "16"]


def test_metrics_csv_and_json_leave_undefined_scores_empty(tmp_path, rep) -> None:
    rows = _rows(write_metrics_csv(rep, tmp_path / "metrics.csv"))
    assert rows[1][:2] == ["1", "water"] and rows[1][2] == f"{5 / 7:.6f}" and rows[1][3] == f"{5 / 6:.6f}"
    assert rows[3][2] == "" and rows[3][6:] == ["1", "0"]  # urban: never predicted
    overall = dict(r for r in rows if len(r) == 2)
    assert overall["overall_accuracy"] == f"{12 / 16:.6f}" and overall["total"] == "16"
    d = json.loads(write_metrics_json(rep, tmp_path / "metrics.json").read_text())
    assert d["per_class"][2]["precision"] is None and d["overall_accuracy"] == pytest.approx(0.75)
    assert "NaN" not in (tmp_path / "metrics.json").read_text()


def test_html_report_with_its_figure_and_no_temporary_files(tmp_path, rep) -> None:
    path = write_report_html(rep, tmp_path / "report.html", title="Test <map>")
    text = path.read_text(encoding="utf-8")
    assert "Test &lt;map&gt;" in text and "forest" in text and "report_matrix.png" in text
    assert (tmp_path / "report_matrix.png").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report_matrix.png"]
