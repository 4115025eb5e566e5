"""Detect Change under headless QGIS (pytest-qgis): plan building and the three modes."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from ..helpers.change import diff_model


def _alg():
    from deeplandcover.algorithms.detect_change import DetectChangeAlgorithm

    alg = DetectChangeAlgorithm()
    alg.initAlgorithm()
    return alg


def _run(params):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    alg = _alg()
    ctx = QgsProcessingContext()
    ok, msg = alg.checkParameterValues(params, ctx)
    assert ok, msg
    return alg.processAlgorithm(params, ctx, QgsProcessingFeedback()), ctx


def test_build_plan_maps_parameters(qgis_app):
    from deeplandcover.algorithms.detect_change import build_plan
    from deeplandcover.core.change.cva import CvaOptions
    from deeplandcover.core.change.from_to import FromToOptions
    from deeplandcover.core.change.model import ChangeModelOptions
    from deeplandcover.core.errors import InputError
    from deeplandcover.core.inference.options import ClassifyOptions

    p = build_plan(0, "a.tif", "b.tif", "o.tif", class_table="t.csv", changed_only=True, mmu=9, table="x.csv")
    assert p == FromToOptions(
        "a.tif",
        "b.tif",
        "o.tif",
        classes_before="t.csv",
        classes_after="t.csv",
        changed_only=True,
        mmu_px=9,
        transition_table_path="x.csv",
    )
    p = build_plan(
        1,
        "a.tif",
        "b.tif",
        "o.tif",
        model="m.onnx",
        tile_size=0,
        overlap=-1,
        batch_size=2,
        device="cpu",
        probabilities="p.tif",
    )
    assert p == ChangeModelOptions(
        "a.tif",
        "b.tif",
        "m.onnx",
        "o.tif",
        prob_path="p.tif",
        table_path=None,
        classify=ClassifyOptions(tile_size=None, overlap=None, batch_size=2, device="cpu"),
    )
    p = build_plan(2, "a.tif", "b.tif", "o.tif", threshold=None, probabilities="m.tif")
    assert p == CvaOptions("a.tif", "b.tif", "o.tif", threshold=None, magnitude_path="m.tif")
    with pytest.raises(InputError, match="needs a change model"):
        build_plan(1, "a.tif", "b.tif", "o.tif")
    with pytest.raises(InputError, match="Method 5 is unknown"):
        build_plan(5, "a.tif", "b.tif", "o.tif")


def test_plan_reads_every_parameter(qgis_app, tmp_path, raster_factory):
    from qgis.core import QgsProcessingContext, QgsProcessingException

    from deeplandcover.core.change.cva import CvaOptions
    from deeplandcover.core.change.model import ChangeModelOptions
    from deeplandcover.core.inference.options import ClassifyOptions
    from deeplandcover.core.raster.polygons import PolygonOptions

    b = str(raster_factory("d1.tif", np.ones((2, 8, 8), np.uint16)))
    a = str(raster_factory("d2.tif", np.ones((2, 8, 8), np.uint16)))
    out, probs, table = str(tmp_path / "o.tif"), str(tmp_path / "p.tif"), str(tmp_path / "t.csv")
    p = _alg().plan(
        {
            "MODE": 1,
            "INPUT": b,
            "INPUT2": a,
            "MODEL": "m.onnx",
            "TILE_SIZE": 64,
            "OVERLAP": 8,
            "BATCH_SIZE": 3,
            "DEVICE": " cuda:1 ",
            "OUTPUT": out,
            "OUTPUT_PROBABILITIES": probs,
            "OUTPUT_TABLE": table,
        },
        QgsProcessingContext(),
    )
    assert p == ChangeModelOptions(
        b,
        a,
        "m.onnx",
        out,
        prob_path=probs,
        table_path=table,
        classify=ClassifyOptions(tile_size=64, overlap=8, batch_size=3, device="cuda:1"),
    )
    p = _alg().plan({"MODE": 2, "INPUT": b, "INPUT2": a, "THRESHOLD": 1.5, "OUTPUT": out}, QgsProcessingContext())
    assert p == CvaOptions(b, a, out, threshold=1.5)
    gpkg = str(tmp_path / "ch.gpkg")
    p = _alg().plan(
        {
            "MODE": 2,
            "INPUT": b,
            "INPUT2": a,
            "OUTPUT": out,
            "OUTPUT_POLYGONS": gpkg,
            "POLYGON_MIN_AREA": 1000,
            "POLYGON_SIMPLIFY": 2.5,
        },
        QgsProcessingContext(),
    )
    assert p == CvaOptions(b, a, out, polygons_path=gpkg, polygons=PolygonOptions(min_area_m2=1000.0, simplify=2.5))
    with pytest.raises(QgsProcessingException, match="GeoPackage"):
        _alg().plan(
            {"MODE": 2, "INPUT": b, "INPUT2": a, "OUTPUT": out, "OUTPUT_POLYGONS": str(tmp_path / "x.shp")},
            QgsProcessingContext(),
        )


def test_from_to_mode_on_eolearn(qgis_app, tmp_path, eolearn):
    src = eolearn / "lulc_reference.tif"
    with rasterio.open(src) as ds:
        ref, prof = ds.read(1), ds.profile
    mod = ref.copy()
    mod[30:60, 20:80][mod[30:60, 20:80] == 2] = 1
    p2 = tmp_path / "lulc2.tif"
    with rasterio.open(p2, "w", **prof) as ds:
        ds.write(mod, 1)
    res, _ = _run(
        {
            "MODE": 0,
            "INPUT": str(src),
            "INPUT2": str(p2),
            "CLASS_TABLE": str(eolearn / "lulc_legend.csv"),
            "CHANGED_ONLY": True,
            "MIN_MAPPING_UNIT": 0,
            "OUTPUT": str(tmp_path / "ft.tif"),
            "OUTPUT_TABLE": str(tmp_path / "t.csv"),
            "OUTPUT_POLYGONS": str(tmp_path / "ft.gpkg"),
        }
    )
    assert res["CHANGED_PIXELS"] == int((ref != mod).sum()) > 0
    import geopandas as gpd

    with rasterio.open(tmp_path / "ft.tif") as ds:
        codes = ds.read(1)
    gdf = gpd.read_file(res["OUTPUT_POLYGONS"])
    assert gdf["pixels"].sum() == (codes != 0).sum() and "forest -> cultivated land" in set(gdf["name"])
    assert (tmp_path / "ft.qml").is_file() and "forest -> cultivated land" in (tmp_path / "t.csv").read_text() + (
        tmp_path / "ft.qml"
    ).read_text().replace("&gt;", ">")
    assert res["OUTPUT_TABLE"] == str(tmp_path / "t.csv")


def test_cva_mode_on_oscd_rennes(qgis_app, tmp_path, oscd):
    f = oscd / "rennes"
    res, _ = _run(
        {
            "MODE": 2,
            "INPUT": str(f / "rennes_2015-08-21_s2l1c_13b_10m.tif"),
            "INPUT2": str(f / "rennes_2017-06-21_s2l1c_13b_10m.tif"),
            "OUTPUT": str(tmp_path / "cva.tif"),
            "OUTPUT_PROBABILITIES": str(tmp_path / "mag.tif"),
        }
    )
    assert res["THRESHOLD_USED"] > 0 and res["CHANGED_PIXELS"] > 0
    assert res["OUTPUT_PROBABILITIES"] == str(tmp_path / "mag.tif")
    with rasterio.open(tmp_path / "cva.tif") as ds:
        assert set(np.unique(ds.read(1)).tolist()) <= {0, 1, 255}


def test_model_mode_and_single_date_model_error(qgis_app, tmp_path, raster_factory):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    pytest.importorskip("onnx")
    bands = ["B02", "B03"]
    d1 = np.full((2, 40, 40), 60, np.uint16)
    d2 = d1.copy()
    d2[0, 5:15, 5:25] = 140
    b = raster_factory("d1.tif", d1, descriptions=bands)
    a = raster_factory("d2.tif", d2, descriptions=bands)
    model = diff_model(tmp_path / "change.onnx", bands, "change")
    res, _ = _run(
        {
            "MODE": 1,
            "INPUT": str(b),
            "INPUT2": str(a),
            "MODEL": str(model),
            "TILE_SIZE": 32,
            "OVERLAP": 8,
            "BATCH_SIZE": 2,
            "DEVICE": "cpu",
            "OUTPUT": str(tmp_path / "dl.tif"),
        }
    )
    with rasterio.open(res["OUTPUT"]) as ds:
        assert int(ds.read(1).sum()) == 200
    single = diff_model(tmp_path / "single.onnx", bands, "segmentation")
    alg = _alg()
    with pytest.raises(QgsProcessingException, match="expects a single date"):
        alg.processAlgorithm(
            {"MODE": 1, "INPUT": str(b), "INPUT2": str(a), "MODEL": str(single), "OUTPUT": str(tmp_path / "x.tif")},
            QgsProcessingContext(),
            QgsProcessingFeedback(),
        )


def test_style_post_processor_is_attached_when_output_is_loaded(qgis_app, tmp_path, raster_factory):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject, QgsRasterLayer

    b = raster_factory("b.tif", np.array([[1, 1], [2, 2]], np.uint8))
    a = raster_factory("a.tif", np.array([[1, 2], [2, 1]], np.uint8))
    out = str(tmp_path / "ft.tif")
    ctx = QgsProcessingContext()
    ctx.setProject(QgsProject.instance())
    ctx.addLayerToLoadOnCompletion(out, QgsProcessingContext.LayerDetails("change", QgsProject.instance(), "OUTPUT"))
    _alg().processAlgorithm({"MODE": 0, "INPUT": str(b), "INPUT2": str(a), "OUTPUT": out}, ctx, QgsProcessingFeedback())
    pp = ctx.layerToLoadOnCompletionDetails(out).postProcessor()
    assert pp is not None
    layer = QgsRasterLayer(out, "change")
    pp.postProcessLayer(layer, ctx, QgsProcessingFeedback())
    assert layer.renderer().type() == "paletted"
    labels = [c.label for c in layer.renderer().classes()]
    assert "class 1 -> class 2" in labels
