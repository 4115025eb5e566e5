"""Post-processors that style an output when Processing loads it into the project: a QML file for rasters,
a categorised renderer with the class raster's colours for class polygons."""

from __future__ import annotations

import os
from pathlib import Path

from qgis.core import QgsProcessingContext, QgsProcessingLayerPostProcessorInterface


# -- QML style on load -----------------------------------------------------------------------------
class StyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    """Applies a QML style to an output layer when Processing loads it into the project."""

    def __init__(self, qml: str) -> None:
        super().__init__()
        self.qml = qml

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802 - QGIS API name
        """Load the style into ``layer`` and repaint it (nothing when the layer or the QML file is missing)."""
        if layer is not None and layer.isValid() and Path(self.qml).is_file():
            layer.loadNamedStyle(self.qml)
            layer.triggerRepaint()


#: Output -> its post-processor. QGIS does not own Python post-processors; they must stay alive until used.
_STYLE_ON_LOAD: dict[str, QgsProcessingLayerPostProcessorInterface] = {}


class ClassPolygonStyle(QgsProcessingLayerPostProcessorInterface):
    """Gives a class-polygon layer a categorised style on load: one fill per class value, the raster's colours."""

    def __init__(self, classes: list[tuple[int, str, str]]) -> None:
        super().__init__()
        self.classes = classes

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802 - QGIS API name
        """Categorise ``layer`` on its ``value`` field (nothing when the layer is missing)."""
        from qgis.core import QgsCategorizedSymbolRenderer, QgsFillSymbol, QgsRendererCategory

        if layer is None or not layer.isValid():
            return
        categories = [
            QgsRendererCategory(value, QgsFillSymbol.createSimple({"color": color, "outline_style": "no"}), name)
            for value, name, color in self.classes
        ]
        layer.setRenderer(QgsCategorizedSymbolRenderer("value", categories))
        layer.triggerRepaint()


def polygons_style_on_load(context: QgsProcessingContext, output: str | None, classes) -> None:
    """Style the class polygons ``output`` like the class raster when Processing loads them (:class:`ClassPolygonStyle`).

    Args:
        classes: :class:`core.classes.ClassInfo` of the values (value, name, colour).
    """
    if not output or not context.willLoadLayerOnCompletion(output):
        return
    processor = ClassPolygonStyle([(int(c.value), c.name, c.color) for c in classes])
    _STYLE_ON_LOAD[output] = processor
    context.layerToLoadOnCompletionDetails(output).setPostProcessor(processor)


def style_on_load(context: QgsProcessingContext, output: str, qml: str | os.PathLike | None) -> None:
    """Have ``qml`` applied to ``output`` when Processing loads it (nothing when it is not loaded or no QML)."""
    if not qml or not context.willLoadLayerOnCompletion(output):
        return
    processor = StyleOnLoad(str(qml))
    _STYLE_ON_LOAD[output] = processor
    context.layerToLoadOnCompletionDetails(output).setPostProcessor(processor)
