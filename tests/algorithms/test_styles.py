"""algorithms.styles: a QML style and a categorised class-polygon style applied when Processing loads an output."""

from __future__ import annotations

import numpy as np
from qgis.core import QgsProcessingContext, QgsRasterLayer, QgsVectorLayer

from deeplandcover.algorithms.styles import ClassPolygonStyle, StyleOnLoad, style_on_load
from deeplandcover.core.classes import ClassInfo, write_class_qml


def test_qml_style_is_applied_to_the_loaded_raster(qgis_app, raster_factory, tmp_path):
    path = raster_factory("classes.tif", np.array([[1, 2], [2, 1]], np.uint8))
    qml = write_class_qml(tmp_path / "style.qml", [ClassInfo(1, "forest", "#00aa00"), ClassInfo(2, "water", "#0000ff")])
    layer = QgsRasterLayer(str(path), "classes")
    StyleOnLoad(str(qml)).postProcessLayer(layer, QgsProcessingContext(), None)
    assert layer.renderer().type() == "paletted"
    assert [c.label for c in layer.renderer().classes()] == ["forest", "water"]
    other = QgsRasterLayer(str(path), "classes")
    StyleOnLoad(str(tmp_path / "missing.qml")).postProcessLayer(other, QgsProcessingContext(), None)
    assert other.renderer().type() != "paletted"  # no QML: the layer keeps QGIS's default


def test_class_polygons_are_categorised_on_value(qgis_app):
    layer = QgsVectorLayer("Polygon?crs=EPSG:32633&field=value:integer", "polygons", "memory")
    ClassPolygonStyle([(1, "forest", "#00aa00"), (7, "water", "#0000ff")]).postProcessLayer(layer, None, None)
    renderer = layer.renderer()
    assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "value"
    assert [(c.value(), c.label(), c.symbol().color().name()) for c in renderer.categories()] == [
        (1, "forest", "#00aa00"),
        (7, "water", "#0000ff"),
    ]


def test_post_processor_only_for_an_output_that_is_loaded(qgis_app, tmp_path):
    from qgis.core import QgsProject

    context = QgsProcessingContext()
    loaded, not_loaded = str(tmp_path / "out.tif"), str(tmp_path / "other.tif")
    context.addLayerToLoadOnCompletion(loaded, QgsProcessingContext.LayerDetails("out", QgsProject.instance()))
    style_on_load(context, loaded, tmp_path / "style.qml")
    style_on_load(context, not_loaded, tmp_path / "style.qml")
    processor = context.layerToLoadOnCompletionDetails(loaded).postProcessor()
    assert isinstance(processor, StyleOnLoad) and processor.qml == str(tmp_path / "style.qml")
    assert not context.willLoadLayerOnCompletion(not_loaded)
