"""Parameter groups shared by several Deep Land Cover algorithms, each declared once.

Every group is a pair of functions taking the algorithm: ``add_<group>_parameters(alg, ...)`` declares
the parameters in ``initAlgorithm``, and ``<group>_values(alg, parameters, context)`` reads them back in
``plan``. The keys are the constants of this module. They are Processing API (scripts, models and
``qgis_process`` use them), so they are the same in every algorithm that has the group.

Also here: the layer -> file helpers that core needs (core reads files, never QGIS layers), the check
of a raster-layer list, and the post-processor that applies an output's QML style when Processing loads
the output into the project.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsProcessingUtils,
    QgsProviderRegistry,
    QgsRasterLayer,
    QgsVectorFileWriter,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

from .qtcompat import NUMBER_DOUBLE, NUMBER_INTEGER, PARAMETER_FLAG_ADVANCED, SOURCE_VECTOR_POLYGON

# -- keys ------------------------------------------------------------------------------------------
TILE_SIZE = "TILE_SIZE"
OVERLAP = "OVERLAP"
BATCH_SIZE = "BATCH_SIZE"
DEVICE = "DEVICE"
THREADS = "THREADS"
VALID_MASKS = "VALID_MASKS"
MASK_TYPE = "MASK_TYPE"
CLOUD_THRESHOLD = "CLOUD_THRESHOLD"
OUTPUT_POLYGONS = "OUTPUT_POLYGONS"
POLYGON_MIN_AREA = "POLYGON_MIN_AREA"
POLYGON_SIMPLIFY = "POLYGON_SIMPLIFY"

#: Core's ``mask_kind`` values, in the order of the MASK_TYPE enum.
MASK_TYPES = ("valid", "cloud", "probability")
MASK_TYPE_LABELS = ("valid-data mask (1 = valid)", "cloud mask (1 = cloud)", "cloud probability")


def _add(alg, parameter: QgsProcessingParameterDefinition, advanced: bool) -> None:
    if advanced:
        parameter.setFlags(parameter.flags() | PARAMETER_FLAG_ADVANCED)
    alg.addParameter(parameter)


# -- tiling ----------------------------------------------------------------------------------------
class Tiling(NamedTuple):
    """TILE_SIZE, OVERLAP and BATCH_SIZE as core takes them.

    Attributes:
        tile_size: tile edge in pixels; None = the model's.
        overlap: pixels shared by neighbouring tiles; negative = the model's.
        batch_size: tiles per model call.
    """

    tile_size: int | None
    overlap: int
    batch_size: int


def add_tiling_parameters(alg) -> None:
    """TILE_SIZE (0 = the model's), OVERLAP (-1 = the model's) and BATCH_SIZE, for every algorithm that runs a
    model through the tiled inference engine."""
    alg.addParameter(
        QgsProcessingParameterNumber(
            TILE_SIZE, alg.tr("Tile size (pixels, 0 = from the model)"), NUMBER_INTEGER, 0, minValue=0
        )
    )
    alg.addParameter(
        QgsProcessingParameterNumber(
            OVERLAP, alg.tr("Tile overlap (pixels, -1 = from the model)"), NUMBER_INTEGER, -1, minValue=-1
        )
    )
    alg.addParameter(
        QgsProcessingParameterNumber(
            BATCH_SIZE, alg.tr("Batch size (tiles per model call)"), NUMBER_INTEGER, 4, minValue=1
        )
    )


def tiling_values(alg, parameters: dict[str, Any], context: QgsProcessingContext) -> Tiling:
    """The tiling group's values (0 tile size -> None)."""
    return Tiling(
        alg.parameterAsInt(parameters, TILE_SIZE, context) or None,
        alg.parameterAsInt(parameters, OVERLAP, context),
        alg.parameterAsInt(parameters, BATCH_SIZE, context),
    )


# -- device and threads ----------------------------------------------------------------------------
def add_device_parameters(alg, *, threads: bool = True, advanced: bool = False) -> None:
    """DEVICE (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``tensorrt``) and, with ``threads``, THREADS (CPU
    threads of ONNX Runtime, 0 = all cores)."""
    _add(
        alg,
        QgsProcessingParameterString(DEVICE, alg.tr("Device (auto, cpu, cuda, cuda:1, tensorrt)"), "auto"),
        advanced,
    )
    if threads:
        _add(
            alg,
            QgsProcessingParameterNumber(THREADS, alg.tr("CPU threads (0 = all cores)"), NUMBER_INTEGER, 0, minValue=0),
            advanced,
        )


def device_value(alg, parameters: dict[str, Any], context: QgsProcessingContext) -> str:
    """DEVICE, stripped; empty -> ``"auto"``."""
    return (alg.parameterAsString(parameters, DEVICE, context) or "auto").strip()


def threads_value(alg, parameters: dict[str, Any], context: QgsProcessingContext) -> int:
    """THREADS (0 = all cores)."""
    return alg.parameterAsInt(parameters, THREADS, context)


# -- valid-data / cloud masks ----------------------------------------------------------------------
class ValidMasks(NamedTuple):
    """VALID_MASKS, MASK_TYPE and CLOUD_THRESHOLD as core takes them (``valid_masks``, ``mask_kind``,
    ``cloud_threshold``).

    Attributes:
        path: raster with one mask band per date, or None.
        kind: ``"valid"`` (1 = valid), ``"cloud"`` (1 = cloud) or ``"probability"`` (cloud probability).
        threshold: cloud probability at or above which a pixel is cloudy, in the raster's units.
    """

    path: str | None
    kind: str
    threshold: float


def add_valid_mask_parameters(alg, *, advanced: bool = False) -> None:
    """VALID_MASKS (optional raster, one band per date), MASK_TYPE (:data:`MASK_TYPES`) and CLOUD_THRESHOLD."""
    _add(
        alg,
        QgsProcessingParameterRasterLayer(
            VALID_MASKS, alg.tr("Valid-data / cloud masks (one band per date)"), optional=True
        ),
        advanced,
    )
    _add(
        alg,
        QgsProcessingParameterEnum(
            MASK_TYPE, alg.tr("Mask type"), [alg.tr(label) for label in MASK_TYPE_LABELS], defaultValue=0
        ),
        advanced,
    )
    _add(
        alg,
        QgsProcessingParameterNumber(
            CLOUD_THRESHOLD, alg.tr("Cloud probability threshold (raster units)"), NUMBER_DOUBLE, 0.5, minValue=0.0
        ),
        advanced,
    )


def valid_mask_values(alg, parameters: dict[str, Any], context: QgsProcessingContext) -> ValidMasks:
    """The valid-mask group's values; ``path`` is None when VALID_MASKS is not set."""
    masks = alg.parameterAsRasterLayer(parameters, VALID_MASKS, context) if parameters.get(VALID_MASKS) else None
    return ValidMasks(
        layer_path(masks) if masks is not None else None,
        MASK_TYPES[alg.parameterAsEnum(parameters, MASK_TYPE, context)],
        alg.parameterAsDouble(parameters, CLOUD_THRESHOLD, context),
    )


# -- class polygons --------------------------------------------------------------------------------
class Polygons(NamedTuple):
    """OUTPUT_POLYGONS, POLYGON_MIN_AREA and POLYGON_SIMPLIFY as core takes them.

    Attributes:
        path: the GeoPackage to write, or None when OUTPUT_POLYGONS is not set.
        options: :class:`core.raster.polygons.PolygonOptions` (minimum area m², simplification in CRS units).
    """

    path: str | None
    options: Any


def add_polygon_parameters(alg, label: str = "Class polygons") -> None:
    """OUTPUT_POLYGONS (optional GeoPackage), POLYGON_MIN_AREA (m², advanced) and POLYGON_SIMPLIFY (CRS units, advanced)."""
    _add(
        alg,
        QgsProcessingParameterNumber(
            POLYGON_MIN_AREA,
            alg.tr("Polygons: minimum mapping unit (m², smaller polygons left out; 0 = keep all)"),
            NUMBER_DOUBLE,
            0.0,
            minValue=0.0,
        ),
        True,
    )
    _add(
        alg,
        QgsProcessingParameterNumber(
            POLYGON_SIMPLIFY,
            alg.tr("Polygons: simplification tolerance (CRS units, 0 = none)"),
            NUMBER_DOUBLE,
            0.0,
            minValue=0.0,
        ),
        True,
    )
    alg.addParameter(
        QgsProcessingParameterVectorDestination(
            OUTPUT_POLYGONS, alg.tr(label), SOURCE_VECTOR_POLYGON, optional=True, createByDefault=False
        )
    )


def polygon_values(alg, parameters: dict[str, Any], context: QgsProcessingContext) -> Polygons:
    """The polygon group's values; ``path`` is None when OUTPUT_POLYGONS is not set.

    Raises:
        QgsProcessingException: OUTPUT_POLYGONS is not a GeoPackage (``.gpkg``).
    """
    from ..core.raster.polygons import PolygonOptions

    options = PolygonOptions(
        min_area_m2=alg.parameterAsDouble(parameters, POLYGON_MIN_AREA, context),
        simplify=alg.parameterAsDouble(parameters, POLYGON_SIMPLIFY, context),
    )
    if not parameters.get(OUTPUT_POLYGONS):
        return Polygons(None, options)
    path = alg.parameterAsOutputLayer(parameters, OUTPUT_POLYGONS, context)
    if not path.lower().endswith(".gpkg"):
        raise QgsProcessingException(
            _tr(
                "The class polygons are written as a GeoPackage: give OUTPUT_POLYGONS a .gpkg file name, not {path}."
            ).format(path=path)
        )
    return Polygons(path, options)


# -- layers -> files -------------------------------------------------------------------------------
def layer_path(layer) -> str:
    """File path of a QGIS map layer (the part of its source before ``|``); ``""`` for None."""
    return layer.source().split("|")[0] if layer is not None else ""


def raster_layer_paths(alg, parameters: dict[str, Any], key: str, context: QgsProcessingContext) -> list[str]:
    """File paths of the raster layers of a multiple-layer parameter (``[]`` when it is empty).

    Raises:
        QgsProcessingException: one of the layers is not a valid raster layer.
    """
    paths = []
    for layer in alg.parameterAsLayerList(parameters, key, context) or []:
        if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
            definition = alg.parameterDefinition(key)
            raise QgsProcessingException(
                alg.tr("Layer {layer} of {parameter} is not a valid raster layer.").format(
                    layer=layer.name() if layer is not None else "?",
                    parameter=definition.description() if definition is not None else key,
                )
            )
        paths.append(layer_path(layer))
    return paths


def vector_file(layer: QgsVectorLayer, context: QgsProcessingContext, name: str = "labels") -> tuple[str, str | None]:
    """(file path, layer name) that core can read for a vector layer.

    A layer of a file that OGR reads, without a subset string (filter), is passed as it is, with the layer name
    inside the file (None for single-layer formats). Any other layer (memory, database, filtered) is first
    written to a temporary GeoPackage, as layer ``name``.

    Raises:
        QgsProcessingException: the temporary copy cannot be written.
    """
    parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
    path = parts.get("path") or ""
    if (
        layer.providerType() == "ogr"
        and path
        and not layer.subsetString()
        and not path.startswith("/vsimem")
        and os.path.isfile(path)
    ):
        return path, parts.get("layerName") or None
    tmp = QgsProcessingUtils.generateTempFilename(f"dlc_{name}.gpkg")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = name
    err = QgsVectorFileWriter.writeAsVectorFormatV3(layer, tmp, context.transformContext(), options)
    if err[0] != QgsVectorFileWriter.WriterError.NoError:
        raise QgsProcessingException(
            _tr("Could not copy layer {layer} to a temporary file: {error}").format(layer=layer.name(), error=err[1])
        )
    return tmp, name


def _tr(text: str) -> str:
    return QCoreApplication.translate("DeepLandCover", text)


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
