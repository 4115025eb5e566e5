"""Processing algorithm ``deeplandcover:detectchange`` (Detect Change).

Parameters -> one core options object (:func:`build_plan`, pure, tested without running) -> one of the
three methods of :mod:`core.change`: :class:`~core.change.from_to.FromToOptions`,
:class:`~core.change.model.ChangeModelOptions` or :class:`~core.change.cva.CvaOptions`. Counterpart of
ArcGIS "Compute Change Raster" and "Detect Change Using Deep Learning".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core import deps
from ..core.errors import InputError
from .base import DlcAlgorithm
from .parameters import (
    OUTPUT_POLYGONS,
    add_device_parameters,
    add_polygon_parameters,
    add_tiling_parameters,
    advanced,
    device_value,
    layer_path,
    polygon_values,
    tiling_values,
)
from .qtcompat import NUMBER_DOUBLE, NUMBER_INTEGER
from .styles import polygons_style_on_load, style_on_load
from .wording import geographic_warning

if TYPE_CHECKING:
    from ..core.change.cva import CvaOptions
    from ..core.change.from_to import FromToOptions
    from ..core.change.model import ChangeModelOptions

    ChangeOptions = Union[FromToOptions, ChangeModelOptions, CvaOptions]

#: The methods, in the order of the MODE choices.
MODES = ("from_to", "model", "cva")

HELP = """Maps change between two dates with one of three <b>methods</b>:
<p><b>Post-classification (from-to)</b>: <b>Date 1</b> and <b>Date 2</b> are two classifications (e.g. two Classify
Pixels outputs). Every pixel gets one value per transition, named like <i>forest -&gt; cultivated land</i>
(value = index_from x K_to + index_to + 1, 0 = nodata), with a colour table and style. <b>Changed pixels only</b>
gives all unchanged pixels one "no change" value. The Date 2 raster is aligned onto Date 1 with nearest neighbour.
The optional <b>transition / area table</b> lists every transition with pixels, m², ha and the % of the from-class.
Both rasters must give each class value the same name (from their QML styles or the <b>class table</b> CSV
<code>value,name[,color]</code>). <b>Minimum change patch</b>: changed patches smaller than this many pixels are
removed (GDAL sieve, 8-connected).</p>
<p><b>Deep-learning change model</b>: Date 1 and Date 2 are the images of the two dates (same bands, same grid) and
the <b>change model</b> a model trained on two-date chips (binary change or "to class"/"no change" labels). It runs
through the same tiled engine as Classify Pixels: <b>Tile size</b> (0 = the model's), <b>Tile overlap</b> (-1 = the
model's), <b>Batch size</b>, <b>Device</b> and <b>GPU number</b> (advanced) mean the same there; the
<b>probabilities</b> output is optional.</p>
<p><b>Change vector analysis</b> (no training): magnitude of the standardised band difference of the two images,
thresholded at the <b>CVA threshold</b> or, when it is empty, with Otsu's method; output 1 = change,
0 = no change. The optional <b>probabilities / magnitude</b> output receives the magnitude.</p>
<p><b>Change polygons</b> (optional GeoPackage, every method): one polygon per connected patch of one output value,
with value, name, pixels, m² and ha, built strip by strip and merged across strip seams; an optional minimum area (m²)
and simplify tolerance (in the units of the raster's CRS); styled like the raster. Every output records the plugin
version, the model file and its SHA-256 (deep-learning method), the parameters and the date.</p>"""

SHORT = "Map change between two dates: from-to change of two classifications, a change model, or CVA."

#: The dialog's words for the methods, in the order of :data:`MODES`.
MODE_LABELS = ("Post-classification (from-to)", "Deep-learning change model", "Change vector analysis")


def build_plan(  # noqa: PLR0913 - one keyword-only argument per Processing parameter
    mode: int,
    before: str,
    after: str,
    output: str,
    *,
    model: str = "",
    class_table: str = "",
    changed_only: bool = False,
    mmu: int = 0,
    threshold: float | None = None,
    tile_size: int = 0,
    overlap: int = -1,
    batch_size: int = 4,
    device: str = "auto",
    probabilities: str = "",
    table: str = "",
    polygons: str = "",
    polygon_options: Any = None,
) -> ChangeOptions:
    """The core options of one Detect Change run, from parameter values (no I/O).

    Args:
        mode: index into :data:`MODES` (from-to, model, cva). before, after, output: raster paths. model: ONNX
            path (model). class_table: CSV for both dates (from-to). changed_only, mmu: from-to.
        threshold: cva (None = Otsu). tile_size (0 = the model's), overlap (negative = the
            model's), batch_size, device: model. probabilities: probability (model) or magnitude
            (cva) raster, "" for none. table: transition (from-to) or area (model) CSV, "" for none.
        polygons: GeoPackage of change polygons, "" for none; polygon_options: their
            :class:`core.raster.polygons.PolygonOptions` (None: defaults).

    Raises:
        InputError: an unknown mode, or a deep-learning run without a model.
    """
    from ..core.change.cva import CvaOptions
    from ..core.change.from_to import FromToOptions
    from ..core.change.model import ChangeModelOptions
    from ..core.inference.options import ClassifyOptions
    from ..core.raster.polygons import PolygonOptions

    poly = polygon_options if polygon_options is not None else PolygonOptions()
    if mode not in range(len(MODES)):
        raise InputError(f"Method {mode} is unknown: choose {', '.join(map(repr, enumerate(MODE_LABELS)))}.")
    name = MODES[mode]
    if name == "from_to":
        return FromToOptions(
            before,
            after,
            output,
            classes_before=class_table or None,
            classes_after=class_table or None,
            changed_only=bool(changed_only),
            mmu_px=int(mmu),
            transition_table_path=table or None,
            polygons_path=polygons or None,
            polygons=poly,
        )
    if name == "model":
        if not model:
            raise InputError("The deep-learning change model method needs a change model (.onnx).")
        classify = ClassifyOptions(
            tile_size=int(tile_size) or None,
            overlap=None if overlap is None or overlap < 0 else int(overlap),
            batch_size=int(batch_size),
            device=(device or "auto").strip(),
            polygons=poly,
        )
        outs = {"prob_path": probabilities or None, "table_path": table or None, "polygons_path": polygons or None}
        return ChangeModelOptions(before, after, model, output, **outs, classify=classify)
    mag = probabilities or None
    return CvaOptions(
        before, after, output, threshold=threshold, magnitude_path=mag, polygons_path=polygons or None, polygons=poly
    )


def run_plan(options: ChangeOptions, feedback) -> tuple[Any, dict[str, Any], list]:
    """Run the core method of ``options``; returns (QML of the output, the algorithm's other results, the classes).

    The results are ``CHANGED_PIXELS`` and ``THRESHOLD_USED`` (None where the method has none) and the
    optional ``OUTPUT_PROBABILITIES`` / ``OUTPUT_TABLE`` / ``OUTPUT_POLYGONS`` paths (as text, only when
    written); the classes (values, names, colours) of the change raster style its polygons.
    """
    from ..core.change.cva import CvaOptions, change_vector_analysis
    from ..core.change.from_to import FromToOptions, from_to_change
    from ..core.change.model import detect_change_with_model

    A = DetectChangeAlgorithm
    if isinstance(options, FromToOptions):
        r = from_to_change(options, feedback)
        extra = {A.CHANGED_PIXELS: r.stats["changed_pixels"], A.OUTPUT_TABLE: r.table, OUTPUT_POLYGONS: r.polygons}
    elif isinstance(options, CvaOptions):
        r = change_vector_analysis(options, feedback)
        extra = {
            A.CHANGED_PIXELS: r.counts.get(1, 0),
            A.THRESHOLD_USED: r.threshold,
            A.OUTPUT_PROBABILITIES: r.magnitude,
            OUTPUT_POLYGONS: r.polygons,
        }
    else:
        r = detect_change_with_model(options, feedback)
        extra = {A.OUTPUT_TABLE: r.area_table, A.OUTPUT_PROBABILITIES: r.probabilities, OUTPUT_POLYGONS: r.polygons}
    results = {A.CHANGED_PIXELS: extra.get(A.CHANGED_PIXELS), A.THRESHOLD_USED: extra.get(A.THRESHOLD_USED)}
    for key in (A.OUTPUT_PROBABILITIES, A.OUTPUT_TABLE, OUTPUT_POLYGONS):
        if extra.get(key):
            results[key] = str(extra[key])
    return r.qml, results, (r.entries if hasattr(r, "entries") else r.classes)


class DetectChangeAlgorithm(DlcAlgorithm):
    """From-to change, change-model inference or change vector analysis between two dates."""

    ALG_NAME = "detectchange"
    ALG_DISPLAY = "Detect Change"
    ALG_GROUP = "4. Change detection"
    ALG_GROUP_ID = "change"
    REQUIREMENTS = deps.INFERENCE
    HELP = HELP
    SHORT = SHORT
    HELP_PAGE = "docs/detectchange.md"

    MODE = "MODE"
    INPUT = "INPUT"
    INPUT2 = "INPUT2"
    MODEL = "MODEL"
    CLASS_TABLE = "CLASS_TABLE"
    CHANGED_ONLY = "CHANGED_ONLY"
    MIN_MAPPING_UNIT = "MIN_MAPPING_UNIT"
    THRESHOLD = "THRESHOLD"
    OUTPUT = "OUTPUT"
    OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"
    OUTPUT_TABLE = "OUTPUT_TABLE"
    CHANGED_PIXELS = "CHANGED_PIXELS"
    THRESHOLD_USED = "THRESHOLD_USED"

    def initAlgorithm(self, config=None):  # noqa: D102
        self._add_method_parameters()
        add_tiling_parameters(self)
        add_device_parameters(self, threads=False)
        self._add_output_parameters()

    def _add_method_parameters(self) -> None:
        """MODE, the two dates and the parameters of each method (model, class table, MMU, threshold)."""
        P = QgsProcessingParameterNumber
        self.addParameter(
            QgsProcessingParameterEnum(
                self.MODE,
                self.tr("Method"),
                options=[self.tr(m) for m in MODE_LABELS],
                defaultValue=0,
            )
        )
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Date 1 raster")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT2, self.tr("Date 2 raster")))
        self.addParameter(
            QgsProcessingParameterFile(self.MODEL, self.tr("Change model (.onnx)"), extension="onnx", optional=True)
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterFile(
                    self.CLASS_TABLE, self.tr("Class table (CSV, from-to)"), extension="csv", optional=True
                )
            )
        )
        self.addParameter(
            advanced(QgsProcessingParameterBoolean(self.CHANGED_ONLY, self.tr("Changed pixels only (from-to)"), False))
        )
        mmu = self.tr("Minimum change patch (px, from-to)")
        self.addParameter(advanced(P(self.MIN_MAPPING_UNIT, mmu, NUMBER_INTEGER, 0, minValue=0)))
        threshold = self.tr("CVA threshold (or Otsu)")
        self.addParameter(advanced(P(self.THRESHOLD, threshold, NUMBER_DOUBLE, None, optional=True, minValue=0.0)))

    def _add_output_parameters(self) -> None:
        """OUTPUT, OUTPUT_PROBABILITIES, OUTPUT_TABLE and the CHANGED_PIXELS / THRESHOLD_USED outputs."""
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Change raster")))
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                self.OUTPUT_PROBABILITIES,
                self.tr("Probabilities / magnitude"),
                optional=True,
                createByDefault=False,
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT_TABLE,
                self.tr("Transition / area table"),
                "CSV files (*.csv)",
                optional=True,
                createByDefault=False,
            )
        )
        add_polygon_parameters(self, "Change polygons")
        self.addOutput(QgsProcessingOutputNumber(self.CHANGED_PIXELS, self.tr("Changed pixels")))
        self.addOutput(QgsProcessingOutputNumber(self.THRESHOLD_USED, self.tr("Threshold used (CVA)")))

    def plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> ChangeOptions:
        """The core options object for ``parameters`` (see :func:`build_plan`).

        Raises:
            InputError: a date is missing, an unknown method, or a deep-learning run without a model.
        """
        parameters = self.normalized_parameters(parameters, context)
        r1 = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        r2 = self.parameterAsRasterLayer(parameters, self.INPUT2, context)
        if r1 is None or r2 is None:
            raise InputError("Choose the rasters of both dates (Date 1 and Date 2).")
        has_thr = parameters.get(self.THRESHOLD) not in (None, "")
        tiling = tiling_values(self, parameters, context)
        polygons = polygon_values(self, parameters, context)
        return build_plan(
            self.parameterAsEnum(parameters, self.MODE, context),
            layer_path(r1),
            layer_path(r2),
            self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            model=self.parameterAsFile(parameters, self.MODEL, context),
            class_table=self.parameterAsFile(parameters, self.CLASS_TABLE, context),
            changed_only=self.parameterAsBoolean(parameters, self.CHANGED_ONLY, context),
            mmu=self.parameterAsInt(parameters, self.MIN_MAPPING_UNIT, context),
            threshold=self.parameterAsDouble(parameters, self.THRESHOLD, context) if has_thr else None,
            tile_size=tiling.tile_size or 0,
            overlap=tiling.overlap,
            batch_size=tiling.batch_size,
            device=device_value(self, parameters, context),
            probabilities=self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES, context),
            table=self.parameterAsFileOutput(parameters, self.OUTPUT_TABLE, context),
            polygons=polygons.path or "",
            polygon_options=polygons.options,
        )

    def run_core(self, parameters: dict[str, Any], context: QgsProcessingContext, feedback) -> dict[str, Any]:  # noqa: D102
        options = self.plan(parameters, context)
        crs = self.parameterAsRasterLayer(parameters, self.INPUT, context).crs()
        polygons = polygon_values(self, parameters, context)
        warning = polygons.path and geographic_warning(crs, self.tr("Polygons: simplify"), polygons.options.simplify)
        if warning:
            feedback.warning(warning)
        qml, results, classes = run_plan(options, feedback)
        out = str(options.output)
        style_on_load(context, out, qml)
        polygons_style_on_load(context, results.get(OUTPUT_POLYGONS), classes)
        return {self.OUTPUT: out, **results}
