"""Parameter groups shared by several Deep Land Cover algorithms, each declared once.

Every group is a pair of functions taking the algorithm: ``add_<group>_parameters(alg, ...)`` declares
the parameters in ``initAlgorithm``, and ``<group>_values(alg, parameters, context)`` reads them back in
``plan``. The keys are the constants of this module. They are Processing API (scripts, models and
``qgis_process`` use them), so they are the same in every algorithm that has the group.

Also here: the layer -> file helpers that core needs (core reads files, never QGIS layers), the check
of a raster-layer list, and the routing of values given in retired shapes (a raster in a vector id, a device as
text). The post-processors that style
outputs on load are in :mod:`algorithms.styles`.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from qgis.core import (
    QgsMapLayer,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
    QgsProcessingUtils,
    QgsProviderRegistry,
    QgsRasterLayer,
    QgsVectorFileWriter,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..core.errors import InputError
from .qtcompat import NUMBER_DOUBLE, NUMBER_INTEGER, PARAMETER_FLAG_ADVANCED, SOURCE_VECTOR_POLYGON

# -- keys ------------------------------------------------------------------------------------------
TILE_SIZE = "TILE_SIZE"
OVERLAP = "OVERLAP"
BATCH_SIZE = "BATCH_SIZE"
DEVICE = "DEVICE"
GPU_INDEX = "GPU_INDEX"
THREADS = "THREADS"
VALID_MASKS = "VALID_MASKS"
MASK_TYPE = "MASK_TYPE"
CLOUD_THRESHOLD = "CLOUD_THRESHOLD"
OUTPUT_POLYGONS = "OUTPUT_POLYGONS"
POLYGON_MIN_AREA = "POLYGON_MIN_AREA"
POLYGON_SIMPLIFY = "POLYGON_SIMPLIFY"

#: Core's ``mask_kind`` values, in the order of the MASK_TYPE enum.
MASK_TYPES = ("valid", "cloud", "probability")
MASK_TYPE_LABELS = ("Valid-data mask (1 = valid)", "Cloud mask (1 = cloud)", "Cloud probability")

#: Core's device values, in the order of the DEVICE enum (the indices are API: scripts pass them). The same
#: dropdown in every algorithm; Train Model trains on CUDA when TensorRT is chosen (TensorRT only runs models).
DEVICES = ("auto", "cpu", "cuda", "tensorrt")
DEVICE_LABELS = ("Automatic (GPU if available)", "CPU", "GPU (CUDA)", "GPU (TensorRT)")


def advanced(parameter: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    """``parameter`` with the Advanced flag (folded under "Advanced parameters" in the dialog)."""
    parameter.setFlags(parameter.flags() | PARAMETER_FLAG_ADVANCED)
    return parameter


def _add(alg, parameter: QgsProcessingParameterDefinition, is_advanced: bool) -> None:
    alg.addParameter(advanced(parameter) if is_advanced else parameter)


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


def add_tiling_parameters(alg, *, is_advanced: bool = True) -> None:
    """TILE_SIZE (0 = the model's), OVERLAP (-1 = the model's) and BATCH_SIZE, for every algorithm that runs a
    model through the tiled inference engine; advanced by default (the model's values suit a first run)."""
    integer = NUMBER_INTEGER
    _add(
        alg,
        QgsProcessingParameterNumber(TILE_SIZE, alg.tr("Tile size (px, 0 = model's)"), integer, 0, minValue=0),
        is_advanced,
    )
    _add(
        alg,
        QgsProcessingParameterNumber(OVERLAP, alg.tr("Tile overlap (px, -1 = model's)"), integer, -1, minValue=-1),
        is_advanced,
    )
    _add(
        alg, QgsProcessingParameterNumber(BATCH_SIZE, alg.tr("Batch size (tiles)"), integer, 4, minValue=1), is_advanced
    )


def tiling_values(alg, parameters: dict[str, Any], context: QgsProcessingContext) -> Tiling:
    """The tiling group's values (0 tile size -> None)."""
    return Tiling(
        alg.parameterAsInt(parameters, TILE_SIZE, context) or None,
        alg.parameterAsInt(parameters, OVERLAP, context),
        alg.parameterAsInt(parameters, BATCH_SIZE, context),
    )


# -- device and threads ----------------------------------------------------------------------------
def add_device_parameters(alg, *, threads: bool = True, is_advanced: bool = True, training: bool = False) -> None:
    """The one Device dropdown of every algorithm that runs a network (DEVICE, :data:`DEVICE_LABELS`), GPU_INDEX
    (which GPU, not for training) and, with ``threads``, THREADS (CPU threads, 0 = automatic).

    The DEVICE indices are API; the free-text values the inference algorithms took before (``"cuda:1"``) are
    converted by :func:`legacy_device`.
    """
    _add(
        alg,
        QgsProcessingParameterEnum(DEVICE, alg.tr("Device"), [alg.tr(c) for c in DEVICE_LABELS], defaultValue=0),
        is_advanced,
    )
    if not training:
        _add(
            alg,
            QgsProcessingParameterNumber(GPU_INDEX, alg.tr("GPU number (0 = first)"), NUMBER_INTEGER, 0, minValue=0),
            is_advanced,
        )
    if threads:
        _add(
            alg,
            QgsProcessingParameterNumber(THREADS, alg.tr("CPU threads (0 = automatic)"), NUMBER_INTEGER, 0, minValue=0),
            is_advanced,
        )


def legacy_device(parameters: dict[str, Any], gpu_index: bool = True) -> None:
    """Turn a DEVICE given as text (``"cpu"``, ``"cuda:1"``, ``" tensorrt "``; scripts written when Classify
    Pixels and Detect Change took free text) into the enum index and GPU_INDEX, in place.

    Args:
        gpu_index: whether the algorithm has GPU_INDEX (``"cuda:N"`` is refused where it has not: Train Model).

    Raises:
        InputError: unknown text, naming the choices.
    """
    value = parameters.get(DEVICE)
    if not isinstance(value, str):
        return
    text = value.strip().lower()
    if not text:
        parameters.pop(DEVICE)
        return
    if text.isdigit():
        return
    kind, _, index = text.partition(":")
    kind = "cuda" if kind == "gpu" else kind
    if kind not in DEVICES or (index and not index.isdigit()) or (index and not gpu_index):
        known = ", ".join(DEVICES) + (" (cuda:N / tensorrt:N for GPU number N)" if gpu_index else "")
        raise InputError(f"Device {value!r} is unknown: choose one of {known}, or its number 0-{len(DEVICES) - 1}.")
    parameters[DEVICE] = DEVICES.index(kind)
    if index:
        parameters[GPU_INDEX] = int(index)


def device_value(alg, parameters: dict[str, Any], context: QgsProcessingContext) -> str:
    """Core's device string: ``auto``, ``cpu``, ``cuda``, ``tensorrt``, with ``:N`` for GPU number N > 0."""
    kind = DEVICES[alg.parameterAsEnum(parameters, DEVICE, context)]
    gpu = alg.parameterAsInt(parameters, GPU_INDEX, context) if alg.parameterDefinition(GPU_INDEX) else 0
    return f"{kind}:{gpu}" if gpu and kind in ("cuda", "tensorrt") else kind


def threads_value(alg, parameters: dict[str, Any], context: QgsProcessingContext) -> int:
    """THREADS (0 = automatic)."""
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


def add_valid_mask_parameters(alg, *, is_advanced: bool = True) -> None:
    """VALID_MASKS (optional raster, one band per date), MASK_TYPE (:data:`MASK_TYPES`) and CLOUD_THRESHOLD."""
    _add(
        alg,
        QgsProcessingParameterRasterLayer(VALID_MASKS, alg.tr("Valid-data / cloud masks"), optional=True),
        is_advanced,
    )
    _add(
        alg,
        QgsProcessingParameterEnum(
            MASK_TYPE, alg.tr("Mask type"), [alg.tr(label) for label in MASK_TYPE_LABELS], defaultValue=0
        ),
        is_advanced,
    )
    _add(
        alg,
        QgsProcessingParameterNumber(
            CLOUD_THRESHOLD, alg.tr("Cloud probability threshold"), NUMBER_DOUBLE, 0.5, minValue=0.0
        ),
        is_advanced,
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
            alg.tr("Polygons: minimum area (m², 0 = all)"),
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
            alg.tr("Polygons: simplify (CRS units)"),
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
            _tr("Polygons are written as a GeoPackage: give the polygon output a .gpkg file name, not {path}.").format(
                path=path
            )
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


def _raster_value(value: Any, context: QgsProcessingContext) -> QgsRasterLayer | None:
    """The raster layer a parameter value names (layer, id, name or file), or None when it is a vector or nothing."""
    if isinstance(value, QgsRasterLayer):
        return value
    if isinstance(value, QgsMapLayer) or not isinstance(value, str) or not value.strip():
        return None
    hint = QgsProcessingUtils.LayerHint
    if isinstance(QgsProcessingUtils.mapLayerFromString(value, context, True, hint.Vector), QgsVectorLayer):
        return None
    layer = QgsProcessingUtils.mapLayerFromString(value, context, True, hint.Raster)
    return layer if isinstance(layer, QgsRasterLayer) and layer.isValid() else None


def route_raster(parameters: dict[str, Any], context: QgsProcessingContext, vector_key: str, raster_key: str) -> None:
    """Move a raster given in ``vector_key`` to ``raster_key``, in place.

    Before issue #26 one parameter took a vector layer or a raster (LABELS of Export Training Tiles, REFERENCE of
    Compute Accuracy). QGIS's field widget crashes when the parent layer of a field parameter is a raster, so
    these ids now take vectors only and the raster has a parameter of its own; scripts and models that pass a
    raster in the old id keep working through this routing (issue #26).
    """
    if parameters.get(raster_key) not in (None, ""):
        return
    if _raster_value(parameters.get(vector_key), context) is not None:
        parameters[raster_key] = parameters.pop(vector_key)


def _tr(text: str) -> str:
    return QCoreApplication.translate("DeepLandCover", text)
