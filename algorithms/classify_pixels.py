"""Processing algorithm ``deeplandcover:classifypixels`` over :func:`core.inference.engine.classify_pixels`.

Counterpart of ArcGIS *Classify Pixels Using Deep Learning* (arguments tile_size, padding, batch_size,
test_time_augmentation; processor type CPU/GPU). Thin layer: parameters -> a :class:`ClassifyPixelsPlan`
(:meth:`ClassifyPixelsAlgorithm.plan`, testable without running) -> core call -> outputs. Mask polygons
are handed to core as GeoJSON geometries already transformed to the raster CRS, so any polygon source
(memory layer, selection, database) works. The class raster's QML style is applied when QGIS loads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsProcessingContext,
    QgsProcessingException,
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
)

from ..core import deps
from .base import DlcAlgorithm
from .parameters import (
    OUTPUT_POLYGONS,
    add_device_parameters,
    add_polygon_parameters,
    add_tiling_parameters,
    add_valid_mask_parameters,
    device_value,
    layer_path,
    polygon_values,
    raster_layer_paths,
    threads_value,
    tiling_values,
    valid_mask_values,
)
from .qtcompat import (
    FILE_BEHAVIOR_FILE,
    NUMBER_DOUBLE,
    PARAMETER_FLAG_ADVANCED,
    SOURCE_RASTER,
    SOURCE_VECTOR_POLYGON,
)
from .styles import polygons_style_on_load, style_on_load
from .wording import geographic_warning

if TYPE_CHECKING:
    from ..core.inference.options import ClassifyOptions

HELP = """<p>Classifies every pixel of a raster with a deep-learning model (<code>.onnx</code> written by
<i>Train Model</i>, or a Deepness segmentation model), the counterpart of ArcGIS <i>Classify Pixels Using
Deep Learning</i>. The raster is processed tile by tile with overlapping tiles blended seamlessly and
written while it runs, so rasters of any size fit in memory. Needs only numpy, rasterio and onnxruntime
(onnxruntime-gpu for the GPU).</p>
<ul>
<li><b>Input raster</b>: bands are picked by the model's band names (band descriptions), or by the band mapping.</li>
<li><b>Further dates</b> (optional): the further dates of a time-series model (oldest first, the input
raster being the first date), or the second date of a change model. All on the input raster's grid.</li>
<li>Multi-sensor models (Export Training Tiles with additional sensors): the first sensor's raster as input and
the other sensors' rasters, in the model's order, as further dates. Spectral indices (NDVI/NDWI/NDBI) that the
model was trained with are recomputed from the bands named in its card.</li>
<li><b>Or a ready model</b>: <i>Dynamic World</i> (Brown et al. 2022, Scientific Data 9, 251; Apache-2.0) maps a
Sentinel-2 L1C raster (its 9 bands found by name) into 9 land-cover classes with no training; made once from the
authors' weights (a local copy: <code>DLC_WEIGHTS_DIR</code>). From scripts: the model file <code>dynamicworld</code>.</li>
<li><b>Model file</b>: the <code>.onnx</code> file, or the STAC Item with the Machine Learning Model extension
(<code>model.stac-item.json</code>, written by <i>Train Model</i>) whose <code>mlm:model</code> asset it is; its card
gives bands, normalisation, classes, tile size and overlap.
A Deepness model without metadata runs with Deepness's conventions (input / 255, tile size from the input shape,
the first bands, classes named by index), and the log says what was assumed; <b>Input scale</b>, <b>Tile size</b>,
<b>Tile overlap</b> and <b>Band mapping</b> (advanced) override them.</li>
<li><b>Processing extent</b> / <b>Mask polygons</b> (optional): classify only this area; pixels outside the polygons are nodata.</li>
</ul>
<p>Advanced parameters:</p>
<ul>
<li><b>Tile size</b> (pixels, 0 = the model's) and <b>Tile overlap</b> (pixels, -1 = the model's, ArcGIS
<i>padding</i> is half of it): larger overlaps remove tile seams at some cost.</li>
<li><b>Batch size</b>: tiles per model call (ArcGIS <i>batch_size</i>).</li>
<li><b>Blending</b>: Gaussian cross-fade of overlapping tiles, or centre crop (each pixel from the tile whose
centre holds it, as ArcGIS).</li>
<li><b>Test-time augmentation</b>: averages the 8 flips/rotations (8 times slower, a little more accurate).</li>
<li><b>Band mapping</b> (optional): the 1-based raster band for each model band, e.g. <code>4,3,2,8</code>.</li>
<li><b>Input scale</b>: raw values are multiplied by this before the model's normalisation (0 = the model's).</li>
<li><b>Resample to model pixel size</b>: a raster whose pixels differ from the training pixels by more than
25 % is only warned about; with this option it is read resampled to the model's pixel size (average when
coarsening, bilinear when refining) and the outputs are written on that grid.</li>
<li><b>Device</b>: automatic (GPU when onnxruntime-gpu offers one), CPU, GPU (CUDA) or GPU (TensorRT, then CUDA);
<b>GPU number</b> picks the GPU of a multi-GPU machine. <b>CPU threads</b> (0 = automatic: all cores).</li>
<li><b>Valid-data / cloud masks</b>: pixels masked for a date become nodata (see Export Training Tiles).</li>
<li><b>Polygons: minimum area</b> (m&sup2;) and <b>Polygons: simplify</b> (tolerance in the units of the raster's CRS: degrees
for a geographic CRS, the log warns) for the class polygons.</li>
</ul>
<ul>
<li><b>Outputs</b>: class raster (class values, nodata 255, colour table and style), optional class
probabilities (one float band per class), a CSV table of per-class areas (pixels, m&sup2;, ha, %) and
<b>class polygons</b> (GeoPackage: value, name, pixels, m&sup2;, ha; optional minimum mapping unit in m&sup2; and
simplification tolerance; built strip by strip (rows), merged across strip seams, styled like the raster). Every output records
the plugin version, the model file and its SHA-256, the architecture, the parameters and the date (GeoTIFF tags,
GeoPackage metadata). <b>COG</b> writes the rasters as Cloud-Optimised GeoTIFFs.</li>
</ul>
<p>Input nodata and pixels outside the mask become nodata (255), never a class. The log tells which
execution provider ran (CPU/CUDA/TensorRT) and the throughput in megapixels per second.</p>"""

BLENDINGS = ("gaussian", "center")


@dataclass(frozen=True)
class ClassifyPixelsPlan:
    """What :class:`ClassifyPixelsAlgorithm` runs: the arguments of :func:`core.inference.engine.classify_pixels`.

    Attributes:
        inputs: the input raster and the additional rasters (further dates, second date, other sensors).
        model: the ``.onnx`` file, its STAC item, or a ready model's catalogue name (``"dynamicworld"``).
        out_path: the class raster. prob_path, area_table_path: the optional outputs, or None.
        options: everything else.
        polygons_path: the optional class polygons (GeoPackage), or None.
    """

    inputs: list[str]
    model: str
    out_path: str
    prob_path: str | None
    area_table_path: str | None
    options: ClassifyOptions
    polygons_path: str | None = None


#: READY_MODEL's options -> the catalogue name passed to the engine (:mod:`core.inference.catalog`); "" = none.
READY_MODELS = ("", "dynamicworld")


class ClassifyPixelsAlgorithm(DlcAlgorithm):
    """Classify Pixels (see module docstring and HELP)."""

    ALG_NAME = "classifypixels"
    ALG_DISPLAY = "Classify Pixels"
    ALG_GROUP = "3. Classification"
    ALG_GROUP_ID = "inference"
    REQUIREMENTS = deps.INFERENCE
    HELP = HELP
    SHORT = "Classify every pixel of a raster with a trained ONNX model, tile by tile, into a styled class raster."
    HELP_PAGE = "docs/classifypixels.md"

    INPUT = "INPUT"
    ADDITIONAL_INPUTS = "ADDITIONAL_INPUTS"
    MODEL = "MODEL"
    READY_MODEL = "READY_MODEL"
    EXTENT = "EXTENT"
    MASK = "MASK"
    BLENDING = "BLENDING"
    TTA = "TTA"
    BAND_MAPPING = "BAND_MAPPING"
    RESAMPLE = "RESAMPLE"
    INPUT_SCALE = "INPUT_SCALE"
    OUTPUT_COG = "OUTPUT_COG"
    OUTPUT = "OUTPUT"
    OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"
    OUTPUT_AREA_TABLE = "OUTPUT_AREA_TABLE"
    EXECUTION_PROVIDER = "EXECUTION_PROVIDER"
    MEGAPIXELS_PER_SECOND = "MEGAPIXELS_PER_SECOND"

    def initAlgorithm(self, config: dict | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster")))
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.ADDITIONAL_INPUTS,
                self.tr("Further dates (rasters)"),
                SOURCE_RASTER,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL,
                self.tr("Model file (.onnx, STAC)"),
                FILE_BEHAVIOR_FILE,
                fileFilter=self.tr("ONNX models (*.onnx);;STAC MLM Items (*.json);;All files (*)"),
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.READY_MODEL,
                self.tr("Or a ready model"),
                [self.tr("None: use the model file"), self.tr("Dynamic World (no training)")],
                defaultValue=0,
            )
        )
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, self.tr("Processing extent"), optional=True))
        mask = QgsProcessingParameterFeatureSource(
            self.MASK, self.tr("Mask polygons"), [SOURCE_VECTOR_POLYGON], optional=True
        )
        mask.setFlags(mask.flags() | PARAMETER_FLAG_ADVANCED)
        self.addParameter(mask)
        add_tiling_parameters(self)
        advanced = [
            QgsProcessingParameterEnum(
                self.BLENDING,
                self.tr("Blending of overlapping tiles"),
                [self.tr("Gaussian cross-fade"), self.tr("Centre crop (ArcGIS-like)")],
                defaultValue=0,
            ),
            QgsProcessingParameterBoolean(self.TTA, self.tr("Test-time augmentation"), False),
            QgsProcessingParameterString(self.BAND_MAPPING, self.tr("Band mapping (e.g. 4,3,2)"), optional=True),
            QgsProcessingParameterBoolean(self.RESAMPLE, self.tr("Resample to model pixel size"), False),
            QgsProcessingParameterNumber(
                self.INPUT_SCALE,
                self.tr("Input scale (0 = model's)"),
                NUMBER_DOUBLE,
                0.0,
                minValue=0.0,
            ),
            QgsProcessingParameterBoolean(self.OUTPUT_COG, self.tr("Cloud-Optimised GeoTIFF (COG)"), False),
        ]
        for p in advanced:
            p.setFlags(p.flags() | PARAMETER_FLAG_ADVANCED)
            self.addParameter(p)
        add_device_parameters(self)
        add_valid_mask_parameters(self)
        self._add_outputs()

    def _add_outputs(self) -> None:
        """OUTPUT, the optional outputs and the EXECUTION_PROVIDER / MEGAPIXELS_PER_SECOND results."""
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Classified raster")))
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                self.OUTPUT_PROBABILITIES, self.tr("Class probabilities"), optional=True, createByDefault=False
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT_AREA_TABLE,
                self.tr("Class area table"),
                self.tr("CSV files (*.csv)"),
                optional=True,
                createByDefault=False,
            )
        )
        add_polygon_parameters(self)
        self.addOutput(QgsProcessingOutputString(self.EXECUTION_PROVIDER, self.tr("Execution provider")))
        self.addOutput(QgsProcessingOutputNumber(self.MEGAPIXELS_PER_SECOND, self.tr("Throughput (Mpx/s)")))

    # -- parameters -> plan -------------------------------------------------------------------
    def plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> ClassifyPixelsPlan:
        """What :meth:`run_core` will run for ``parameters`` (no side effects).

        Raises:
            QgsProcessingException: an input layer is missing/invalid or the band mapping is malformed.
        """
        from ..core.errors import InputError
        from ..core.inference.bands import parse_band_map
        from ..core.inference.options import ClassifyOptions

        parameters = self.normalized_parameters(parameters, context)
        raster = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if raster is None or not raster.isValid():
            raise QgsProcessingException(self.invalidRasterError(parameters, self.INPUT))
        inputs = [layer_path(raster), *raster_layer_paths(self, parameters, self.ADDITIONAL_INPUTS, context)]
        try:
            band_map = parse_band_map(self.parameterAsString(parameters, self.BAND_MAPPING, context))
        except InputError as e:
            raise QgsProcessingException(str(e)) from e
        tiling = tiling_values(self, parameters, context)
        masks = valid_mask_values(self, parameters, context)
        polygons = polygon_values(self, parameters, context)
        prob = self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES, context) or None
        table = self.parameterAsFileOutput(parameters, self.OUTPUT_AREA_TABLE, context) or None
        options = ClassifyOptions(
            extent=self._extent(parameters, context, raster.crs()),
            mask=self._mask(parameters, context, raster.crs()),
            tile_size=tiling.tile_size,
            overlap=tiling.overlap,
            batch_size=tiling.batch_size,
            blending=BLENDINGS[self.parameterAsEnum(parameters, self.BLENDING, context)],
            tta=self.parameterAsBool(parameters, self.TTA, context),
            device=device_value(self, parameters, context),
            threads=threads_value(self, parameters, context),
            band_map=band_map,
            valid_masks=masks.path,
            mask_kind=masks.kind,
            cloud_threshold=masks.threshold,
            resample=self.parameterAsBool(parameters, self.RESAMPLE, context),
            input_scale=self.parameterAsDouble(parameters, self.INPUT_SCALE, context) or None,
            cog=self.parameterAsBool(parameters, self.OUTPUT_COG, context),
            polygons=polygons.options,
        )
        return ClassifyPixelsPlan(
            inputs=inputs,
            model=self._model(parameters, context),
            out_path=self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            prob_path=prob if parameters.get(self.OUTPUT_PROBABILITIES) else None,
            area_table_path=table if parameters.get(self.OUTPUT_AREA_TABLE) else None,
            options=options,
            polygons_path=polygons.path,
        )

    def _model(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str:
        """The model file, or the catalogue name of the chosen ready model (``MODEL=dynamicworld`` works too).

        Raises:
            QgsProcessingException: neither or both given.
        """
        path = self.parameterAsFile(parameters, self.MODEL, context)
        ready = READY_MODELS[self.parameterAsEnum(parameters, self.READY_MODEL, context)]
        if ready and path:
            raise QgsProcessingException(
                self.tr("Give either a model file or a ready model ({}), not both.").format(ready)
            )
        if not (ready or path):
            raise QgsProcessingException(self.tr("Choose a model: a model file (.onnx, STAC item) or a ready model."))
        return ready or path

    def _extent(
        self, parameters: dict[str, Any], context: QgsProcessingContext, crs
    ) -> tuple[float, float, float, float] | None:
        """EXTENT in the raster CRS as ``(left, bottom, right, top)``, or None when unset or empty."""
        if not parameters.get(self.EXTENT):
            return None
        rect = self.parameterAsExtent(parameters, self.EXTENT, context, crs)
        if rect.isNull() or rect.isEmpty():
            return None
        return rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()

    def _mask(self, parameters: dict[str, Any], context: QgsProcessingContext, crs) -> list[dict] | None:
        """MASK as GeoJSON geometries in the raster CRS, or None when unset.

        Raises:
            QgsProcessingException: the mask source cannot be read.
        """
        if not parameters.get(self.MASK):
            return None
        source = self.parameterAsSource(parameters, self.MASK, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.MASK))
        return mask_geometries(source, crs, context)

    def run_core(self, parameters: dict[str, Any], context: QgsProcessingContext, feedback) -> dict[str, Any]:
        from ..core.inference.engine import classify_pixels
        from ..core.inference.options import OutputPaths

        plan = self.plan(parameters, context)
        crs = self.parameterAsRasterLayer(parameters, self.INPUT, context).crs()
        warning = plan.polygons_path and geographic_warning(
            crs, self.tr("Polygons: simplify"), plan.options.polygons.simplify
        )
        if warning:
            feedback.warning(warning)
        outputs = OutputPaths(plan.out_path, plan.prob_path, plan.area_table_path, plan.polygons_path)
        res = classify_pixels(plan.inputs, plan.model, outputs, plan.options, feedback=feedback)
        out = str(res.output)
        style_on_load(context, out, res.qml)
        polygons_style_on_load(context, plan.polygons_path, res.classes)
        # the engine has logged the execution provider; this line is the summary
        feedback.info(
            f"{res.megapixels_per_s:.2f} megapixels/s; classes {', '.join(f'{c.value}={c.name}' for c in res.classes)}."
        )
        return {
            self.OUTPUT: out,
            self.OUTPUT_PROBABILITIES: str(res.probabilities) if res.probabilities else None,
            self.OUTPUT_AREA_TABLE: str(res.area_table) if res.area_table else None,
            OUTPUT_POLYGONS: str(res.polygons) if res.polygons else None,
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
