"""algorithms.parameters: old DEVICE texts, layers to files, and a raster given in a vector-only id."""

from __future__ import annotations

import numpy as np
import pytest
from qgis.core import QgsFeature, QgsGeometry, QgsProcessingContext, QgsRasterLayer, QgsVectorLayer

from deeplandcover.algorithms.parameters import DEVICE, GPU_INDEX, layer_path, legacy_device, route_raster, vector_file
from deeplandcover.core.errors import InputError


@pytest.mark.parametrize(
    "given, expected",
    [
        ({DEVICE: " CPU "}, {DEVICE: 1}),
        ({DEVICE: "gpu:2"}, {DEVICE: 2, GPU_INDEX: 2}),
        ({DEVICE: "tensorrt:1"}, {DEVICE: 3, GPU_INDEX: 1}),
        ({DEVICE: ""}, {}),
        ({DEVICE: "2"}, {DEVICE: "2"}),
        ({DEVICE: 0}, {DEVICE: 0}),
    ],
)
def test_device_text_becomes_the_enum_index(given, expected):
    legacy_device(given)
    assert given == expected


def test_unknown_device_text_names_the_choices():
    with pytest.raises(InputError, match=r"Device 'tpu' is unknown: choose one of auto, cpu, cuda, tensorrt"):
        legacy_device({DEVICE: "tpu"})
    with pytest.raises(InputError, match="number 0-3"):
        legacy_device({DEVICE: "cuda:1"}, gpu_index=False)  # Train Model has no GPU_INDEX


def test_layers_become_files_core_can_read(qgis_app, raster_factory, tmp_path):
    raster = QgsRasterLayer(str(raster_factory("r.tif", np.zeros((4, 4), np.uint8))), "r")
    assert layer_path(raster) == str(tmp_path / "r.tif") and layer_path(None) == ""
    memory = QgsVectorLayer("Polygon?crs=EPSG:32633&field=cls:integer", "drawn", "memory")
    feature = QgsFeature(memory.fields())
    feature.setGeometry(QgsGeometry.fromWkt("POLYGON((0 0, 10 0, 10 10, 0 0))"))
    feature.setAttributes([3])
    memory.dataProvider().addFeatures([feature])
    path, name = vector_file(memory, QgsProcessingContext(), "labels")
    assert path.endswith(".gpkg") and name == "labels"
    copy = QgsVectorLayer(f"{path}|layername=labels", "copy", "ogr")
    assert copy.featureCount() == 1 and [f["cls"] for f in copy.getFeatures()] == [3]
    assert vector_file(copy, QgsProcessingContext()) == (path, "labels")  # a file OGR reads is used as it is


def test_a_raster_in_the_vector_id_moves_to_the_raster_id(qgis_app, raster_factory, tmp_path):
    raster = str(raster_factory("labels.tif", np.ones((4, 4), np.uint8)))
    params = {"LABELS": raster}
    route_raster(params, QgsProcessingContext(), "LABELS", "LABELS_RASTER")
    assert params == {"LABELS_RASTER": raster}
    given = {"LABELS": raster, "LABELS_RASTER": "other.tif"}
    route_raster(given, QgsProcessingContext(), "LABELS", "LABELS_RASTER")
    assert given == {"LABELS": raster, "LABELS_RASTER": "other.tif"}  # an explicit raster wins: nothing moves
    kept = {"LABELS": str(tmp_path / "missing.gpkg")}
    route_raster(kept, QgsProcessingContext(), "LABELS", "LABELS_RASTER")
    assert kept == {"LABELS": str(tmp_path / "missing.gpkg")}
