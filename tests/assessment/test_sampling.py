"""Accuracy assessment points (Create Accuracy Points): equalised, stratified and random designs, minimum distance."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import rasterio

from deeplandcover.core.assessment.sampling import AccuracyPointsOptions, create_accuracy_points


def test_assessment_point_strategies(tmp_path, classified):
    path, pred = classified
    vals, cnt = np.unique(pred[pred > 0], return_counts=True)
    eq = create_accuracy_points(
        AccuracyPointsOptions(path, 80, tmp_path / "eq.gpkg", strategy="equalized_stratified", seed=1, ignore=(0,))
    )
    assert eq["per_class"] == {int(v): 10 for v in vals}
    st = create_accuracy_points(
        AccuracyPointsOptions(path, 100, tmp_path / "st.gpkg", strategy="stratified_random", seed=1, ignore=(0,))
    )
    expected = 100 * cnt / cnt.sum()
    got = np.array([st["per_class"].get(int(v), 0) for v in vals])
    assert got.sum() == 100 and np.all(np.abs(got - expected) < 1)
    rnd = create_accuracy_points(
        AccuracyPointsOptions(
            path, 60, tmp_path / "rnd.gpkg", strategy="random", seed=1, ignore=(0,), min_distance=200.0
        )
    )
    g = gpd.read_file(tmp_path / "rnd.gpkg")
    assert rnd["points"] == len(g) == 60 and (g["sampling"] == "random").all()
    xy = np.c_[g.geometry.x, g.geometry.y]
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    assert d[np.triu_indices(len(g), 1)].min() >= 200.0
    rows, cols = rasterio.transform.rowcol(rasterio.open(path).transform, xy[:, 0], xy[:, 1])
    assert (pred[rows, cols] > 0).all() and (g["predicted"].to_numpy() == pred[rows, cols]).all()
    again = create_accuracy_points(
        AccuracyPointsOptions(
            path, 60, tmp_path / "rnd2.gpkg", strategy="random", seed=1, ignore=(0,), min_distance=200.0
        )
    )
    assert again == rnd and gpd.read_file(tmp_path / "rnd2.gpkg").geometry.equals(g.geometry)


def test_min_distance_too_large_warns(tmp_path, raster_factory):
    cls = raster_factory("small.tif", np.array([[1, 1, 2, 2]] * 4, dtype=np.uint8))
    warnings = []

    class Fb:
        set_progress = staticmethod(lambda p: None)
        is_canceled = staticmethod(lambda: False)
        info = staticmethod(lambda m: None)
        warning = staticmethod(warnings.append)

    info = create_accuracy_points(
        AccuracyPointsOptions(cls, 8, tmp_path / "p.gpkg", strategy="equalized_stratified", min_distance=25.0),
        feedback=Fb(),
    )
    assert info["points"] < 8 and any("minimum distance" in w for w in warnings)
