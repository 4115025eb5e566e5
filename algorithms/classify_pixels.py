"""Processing algorithm ``deeplandcover:classifypixels`` over :func:`core.inference.classify_raster`.

Counterpart of ArcGIS *Classify Pixels Using Deep Learning* (arguments tile_size, padding, batch_size,
test_time_augmentation; processor type CPU/GPU). Thin layer: parameters -> a plain keyword dict
(:meth:`ClassifyPixelsAlgorithm.plan`, testable without running) -> core call -> outputs. Mask polygons
are handed to core as GeoJSON geometries already transformed to the raster CRS, so any polygon source
(memory layer, selection, database) works. The class raster's QML style is applied when QGIS loads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsRasterLayer,
)

from ..core import deps
from .base import DlcAlgorithm, layer_path
from .qtcompat import (
    FILE_BEHAVIOR_FILE,
    NUMBER_DOUBLE,
    NUMBER_INTEGER,
    PARAMETER_FLAG_ADVANCED,
    SOURCE_RASTER,
    SOURCE_VECTOR_POLYGON,
)

HELP = """<p>Classifies every pixel of a raster with a deep-learning model (<code>.onnx</code> written by
<i>Train Model</i>, or a Deepness segmentation model), the counterpart of ArcGIS <i>Classify Pixels Using
Deep Learning</i>. The raster is processed tile by tile with overlapping tiles blended seamlessly and
written while it runs, so rasters of any size fit in memory. Needs only numpy, rasterio and onnxruntime
(onnxruntime-gpu for the GPU).</p>
<ul>
<li><b>Input raster</b>: bands are picked by the model's band names (band descriptions), or by the band mapping.</li>
<li><b>Additional rasters</b> (optional): the further dates of a time-series model (oldest first, the input
raster being the first date), or the second date of a change model. All on the input raster's grid.</li>
<li>Multi-sensor models (Export Training Tiles with additional sensors): the first sensor's raster as input and
the other sensors' rasters, in the model's order, as additional rasters. Spectral indices (NDVI/NDWI/NDBI) that the
model was trained with are recomputed from the bands named in its card.</li>
<li><b>Model</b>: the <code>.onnx</code> file; its card gives bands, normalisation, classes, tile size and overlap.</li>
<li><b>Extent</b> / <b>Mask polygons</b> (optional): classify only this area; pixels outside the polygons are nodata.</li>
<li><b>Tile size</b> (pixels, 0 = the model's) and <b>Overlap</b> (pixels, -1 = the model's, ArcGIS
<i>padding</i> is half of it): larger overlaps remove tile seams at some cost.</li>
<li><b>Batch size</b>: tiles per model call (ArcGIS <i>batch_size</i>).</li>
<li><b>Blending</b>: Gaussian cross-fade of overlapping tiles, or centre crop (each pixel from the tile whose
centre holds it, as ArcGIS).</li>
<li><b>Test-time augmentation</b>: averages the 8 flips/rotations (8 times slower, a little more accurate).</li>
<li><b>Band mapping</b> (optional): the 1-based raster band for each model band, e.g. <code>4,3,2,8</code>.</li>
<li><b>Resample to the model's pixel size</b>: a raster whose pixels differ from the training pixels by more than
25 % is only warned about; with this option it is read resampled to the model's pixel size (average when
coarsening, bilinear when refining) and the outputs are written on that grid.</li>
<li><b>Device</b>: <code>auto</code> (GPU when available), <code>cpu</code>, <code>cuda</code>, <code>cuda:1</code>.
<b>Threads</b>: CPU threads (0 = all cores).</li>
<li><b>Outputs</b>: class raster (class values, nodata 255, colour table and style), optional class
probabilities (one float band per class) and a CSV table of per-class areas (pixels, m&sup2;, ha, %).</li>
</ul>
<p>Input nodata and pixels outside the mask become nodata (255), never a class. The log tells which
execution provider ran (CPU/CUDA/TensorRT) and the throughput in megapixels per second.</p>"""

BLENDINGS = ["gaussian", "center"]
MASK_TYPES = ["valid", "cloud", "probability"]
MASK_TYPES_LABELS = ["valid-data mask (1 = valid)", "cloud mask (1 = cloud)", "cloud probability"]

#: Keeps the post-processors alive until QGIS has used them (QGIS does not own Python objects).
_POST_PROCESSORS: dict[str, QgsProcessingLayerPostProcessorInterface] = {}


class ApplyClassStyle(QgsProcessingLayerPostProcessorInterface):
    """Applies a QML style to the class raster when Processing loads it into the project."""

    def __init__(self, qml: str) -> None:
        super().__init__()
        self.qml = qml

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: D102, N802
        if isinstance(layer, QgsRasterLayer) and layer.isValid() and Path(self.qml).is_file():
            layer.loadNamedStyle(self.qml)
            layer.triggerRepaint()


class ClassifyPixelsAlgorithm(DlcAlgorithm):
    """Classify Pixels (see module docstring and HELP)."""

    ALG_NAME = "classifypixels"
    ALG_DISPLAY = "Classify Pixels"
    ALG_GROUP = "Inference"
    ALG_GROUP_ID = "inference"
    REQUIREMENTS = deps.INFERENCE
    HELP = HELP

    INPUT = "INPUT"
    ADDITIONAL_INPUTS = "ADDITIONAL_INPUTS"
    MODEL = "MODEL"
    EXTENT = "EXTENT"
    MASK = "MASK"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    BLENDING = "BLENDING"
    TTA = "TTA"
    BAND_MAPPING = "BAND_MAPPING"
    RESAMPLE = "RESAMPLE"
    DEVICE = "DEVICE"
    THREADS = "THREADS"
    OUTPUT = "OUTPUT"
    OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"
    OUTPUT_AREA_TABLE = "OUTPUT_AREA_TABLE"
    EXECUTION_PROVIDER = "EXECUTION_PROVIDER"
    MEGAPIXELS_PER_SECOND = "MEGAPIXELS_PER_SECOND"

    def initAlgorithm(self, config: dict | None = None) -> None:  # noqa: D102
        integer = NUMBER_INTEGER
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster")))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.ADDITIONAL_INPUTS, self.tr("Additional rasters (further dates of a series, or the second date)"),
            SOURCE_RASTER, optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, self.tr("Model (.onnx)"), FILE_BEHAVIOR_FILE, extension="onnx"))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, self.tr("Processing extent"), optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.MASK, self.tr("Mask polygons (classify inside only)"), [SOURCE_VECTOR_POLYGON],
            optional=True))
        self.add_tiling_parameters()
        advanced = [
            QgsProcessingParameterEnum(self.BLENDING, self.tr("Blending of overlapping tiles"),
                                       [self.tr("Gaussian cross-fade"), self.tr("Centre crop (ArcGIS-like)")],
                                       defaultValue=0),
            QgsProcessingParameterBoolean(self.TTA, self.tr("Test-time augmentation (8 flips/rotations)"), False),
            QgsProcessingParameterString(self.BAND_MAPPING, self.tr("Band mapping (raster band per model band, "
                                                                    "e.g. 4,3,2,8)"), optional=True),
            QgsProcessingParameterBoolean(self.RESAMPLE, self.tr("Resample to the model's pixel size"), False),
            QgsProcessingParameterString(self.DEVICE, self.tr("Device (auto, cpu, cuda, cuda:1)"), "auto"),
            QgsProcessingParameterNumber(self.THREADS, self.tr("CPU threads (0 = all cores)"), integer, 0, minValue=0),
            QgsProcessingParameterRasterLayer(
                "VALID_MASKS", self.tr("Valid-data / cloud masks, one band per date (time-series models trained "
                                       "with a cloud policy)"), optional=True),
            QgsProcessingParameterEnum("MASK_TYPE", self.tr("Mask type"), MASK_TYPES_LABELS, defaultValue=0),
            QgsProcessingParameterNumber("CLOUD_THRESHOLD", self.tr("Cloud probability threshold (raster units)"),
                                         NUMBER_DOUBLE, 0.5),
        ]
        for p in advanced:
            p.setFlags(p.flags() | PARAMETER_FLAG_ADVANCED)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Classified raster")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_PROBABILITIES, self.tr("Class probabilities"), optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_AREA_TABLE, self.tr("Class area table"), self.tr("CSV files (*.csv)"), optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputString(self.EXECUTION_PROVIDER, self.tr("Execution provider")))
        self.addOutput(QgsProcessingOutputNumber(self.MEGAPIXELS_PER_SECOND, self.tr("Throughput (Mpx/s)")))

    # -- parameters -> plan -------------------------------------------------------------------
    def plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """Keyword arguments of :func:`core.inference.classify_raster` for ``parameters``.

        Raises:
            QgsProcessingException: an input layer is missing/invalid or the band mapping is malformed.
        """
        from ..core.errors import InputError
        from ..core.inference.engine import parse_band_map

        raster = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if raster is None or not raster.isValid():
            raise QgsProcessingException(self.invalidRasterError(parameters, self.INPUT))
        inputs = [layer_path(raster)]
        for lyr in self.parameterAsLayerList(parameters, self.ADDITIONAL_INPUTS, context) or []:
            if not isinstance(lyr, QgsRasterLayer) or not lyr.isValid():
                raise QgsProcessingException(self.tr(f"Additional input {lyr.name() if lyr else '?'} is not a "
                                                     "valid raster layer."))
            inputs.append(layer_path(lyr))
        extent = None
        if parameters.get(self.EXTENT):
            rect = self.parameterAsExtent(parameters, self.EXTENT, context, raster.crs())
            if not rect.isNull() and not rect.isEmpty():
                extent = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
        mask = None
        if parameters.get(self.MASK):
            source = self.parameterAsSource(parameters, self.MASK, context)
            if source is None:
                raise QgsProcessingException(self.invalidSourceError(parameters, self.MASK))
            mask = mask_geometries(source, raster.crs(), context)
        try:
            band_map = parse_band_map(self.parameterAsString(parameters, self.BAND_MAPPING, context))
        except InputError as e:
            raise QgsProcessingException(str(e)) from e
        prob = self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES, context) or None
        table = self.parameterAsFileOutput(parameters, self.OUTPUT_AREA_TABLE, context) or None
        return {
            "inputs": inputs,
            "model": self.parameterAsFile(parameters, self.MODEL, context),
            "out_path": self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            "prob_path": prob if parameters.get(self.OUTPUT_PROBABILITIES) else None,
            "area_table_path": table if parameters.get(self.OUTPUT_AREA_TABLE) else None,
            "extent": extent,
            "mask": mask,
            "tile_size": self.parameterAsInt(parameters, self.TILE_SIZE, context) or None,
            "overlap": self.parameterAsInt(parameters, self.OVERLAP, context),
            "batch_size": self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            "blending": BLENDINGS[self.parameterAsEnum(parameters, self.BLENDING, context)],
            "tta": self.parameterAsBool(parameters, self.TTA, context),
            "device": (self.parameterAsString(parameters, self.DEVICE, context) or "auto").strip(),
            "threads": self.parameterAsInt(parameters, self.THREADS, context),
            "band_map": band_map,
            "valid_masks": layer_path(masks) if (masks := self.parameterAsRasterLayer(
                parameters, "VALID_MASKS", context)) is not None and parameters.get("VALID_MASKS") else None,
            "mask_kind": MASK_TYPES[self.parameterAsEnum(parameters, "MASK_TYPE", context)],
            "cloud_threshold": self.parameterAsDouble(parameters, "CLOUD_THRESHOLD", context),
            "resample": self.parameterAsBool(parameters, self.RESAMPLE, context),
        }

    def run_core(self, parameters: dict[str, Any], context: QgsProcessingContext, feedback) -> dict[str, Any]:  # noqa: D102
        from ..core.inference.engine import classify_raster

        kw = self.plan(parameters, context)
        res = classify_raster(feedback=feedback, **kw)
        out = str(res.output)
        if context.willLoadLayerOnCompletion(out):
            proc = ApplyClassStyle(str(res.qml))
            _POST_PROCESSORS[out] = proc
            context.layerToLoadOnCompletionDetails(out).setPostProcessor(proc)
        feedback.info(f"Execution provider: {res.provider}; {res.megapixels_per_s:.2f} megapixels/s; "
                      f"classes {', '.join(f'{c.value}={c.name}' for c in res.classes)}.")
        return {
            self.OUTPUT: out,
            self.OUTPUT_PROBABILITIES: str(res.probabilities) if res.probabilities else None,
            self.OUTPUT_AREA_TABLE: str(res.area_table) if res.area_table else None,
            self.EXECUTION_PROVIDER: res.provider,
            self.MEGAPIXELS_PER_SECOND: res.megapixels_per_s,
        }


def mask_geometries(source, crs, context: QgsProcessingContext) -> list[dict]:
    """GeoJSON geometries of a polygon feature source, transformed to ``crs`` (the raster CRS)."""
    ct = QgsCoordinateTransform(source.sourceCrs(), crs, context.transformContext())
    geoms = []
    req = QgsFeatureRequest().setNoAttributes()
    for f in source.getFeatures(req):
        g = f.geometry()
        if g is None or g.isEmpty():
            continue
        if source.sourceCrs() != crs:
            g.transform(ct)
        geoms.append(json.loads(g.asJson()))
    return geoms
