"""Processing algorithm ``deeplandcover:computeaccuracy`` (Compute Accuracy).

Parameters -> :class:`core.assessment.compare.AccuracyOptions` (:meth:`ComputeAccuracyAlgorithm.plan`) -> one
call of :func:`core.assessment.compare.compute_accuracy`, which also writes the matrix, metrics and report.
Counterpart of ArcGIS "Compute Accuracy For Pixel Classification" / "Compute Confusion Matrix".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from ..core import deps
from ..core.errors import InputError
from .base import DlcAlgorithm
from .parameters import advanced, layer_path, route_raster, vector_file
from .qtcompat import SOURCE_VECTOR_ANY_GEOMETRY

if TYPE_CHECKING:
    from ..core.assessment.compare import AccuracyOptions

HELP = """Compares a classified raster with reference data and reports its accuracy.
<p><b>Reference polygons/points</b> with a <b>reference class field</b> holding the same integer class values as
the classification; polygons are rasterized onto the classified grid (pixel centre inside), points are compared with
the pixel under them. <b>Or</b> a <b>reference raster</b> (a classification on any grid: it is aligned onto the
classified raster with nearest neighbour); then leave the polygons empty.</p>
<p><b>Outputs</b>: the confusion matrix as CSV (rows = reference, columns = predicted, headed by class names),
an HTML report with a heat map, overall accuracy, Cohen's kappa, per-class precision (user's accuracy), recall
(producer's accuracy), F1, IoU, support, mean IoU and macro F1; optionally all figures as JSON. Undefined scores
(e.g. the precision of a class never predicted) are left empty.</p>
<p>Advanced: <b>Class values to ignore</b>: excluded on both sides, comma-separated (default 255 = no label); each
raster's nodata is always excluded. Reference classes that the classification does not know are listed in
the report and left out of the matrix.
<b>Stratified random sample</b>: when the reference points were made by <i>Create Accuracy Assessment Points</i>
(stratified random or equalized stratified) or this box is ticked, the report adds the area-weighted estimates of
Olofsson et al. (2014): error matrix of area proportions, overall/user's/producer's accuracy and class areas with
95 % confidence intervals.
<b>Class table</b> (optional): a CSV <code>value,name[,color]</code> naming the classes; by default the
names of the classified raster's QML style are used.</p>
<p>A reference raster has a box of its own (QGIS crashed when the class field's layer was a raster);
scripts that pass a raster as the reference polygons still work.</p>"""

SHORT = "Confusion matrix, overall accuracy, kappa, per-class F1 and IoU against reference data."


def parse_ignore_values(text: str) -> tuple[int, ...]:
    """``"0, 255"`` -> ``(0, 255)``.

    Raises:
        InputError: an entry is not an integer.
    """
    out = []
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(int(part))
        except ValueError as e:
            raise InputError(f"Ignore values must be integers separated by commas (e.g. '0,255'); got '{part}'.") from e
    return tuple(out)


class ComputeAccuracyAlgorithm(DlcAlgorithm):
    """Confusion matrix, OA, kappa, per-class P/R/F1/IoU and an HTML report."""

    ALG_NAME = "computeaccuracy"
    ALG_DISPLAY = "Compute Accuracy"
    ALG_GROUP = "5. Accuracy assessment"
    ALG_GROUP_ID = "accuracy"
    REQUIREMENTS = deps.METRICS
    HELP = HELP
    SHORT = SHORT
    HELP_PAGE = "docs/computeaccuracy.md"

    INPUT = "INPUT"
    REFERENCE = "REFERENCE"
    REFERENCE_FIELD = "REFERENCE_FIELD"
    REFERENCE_RASTER = "REFERENCE_RASTER"
    CLASS_TABLE = "CLASS_TABLE"
    IGNORE_VALUES = "IGNORE_VALUES"
    STRATIFIED = "STRATIFIED"
    OUTPUT_MATRIX = "OUTPUT_MATRIX"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    OUTPUT_METRICS = "OUTPUT_METRICS"
    OA = "OA"
    KAPPA = "KAPPA"
    MIOU = "MIOU"

    def initAlgorithm(self, config=None):  # noqa: D102
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Classified raster")))
        # A vector parent only: QGIS's field widget crashes on a raster parent (issue #26).
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                self.REFERENCE, self.tr("Reference polygons/points"), [SOURCE_VECTOR_ANY_GEOMETRY], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.REFERENCE_FIELD,
                self.tr("Reference class field"),
                parentLayerParameterName=self.REFERENCE,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.REFERENCE_RASTER, self.tr("Or: reference raster"), optional=True)
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterFile(
                    self.CLASS_TABLE, self.tr("Class table (CSV)"), extension="csv", optional=True
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterString(
                    self.IGNORE_VALUES, self.tr("Class values to ignore"), defaultValue="255", optional=True
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterBoolean(self.STRATIFIED, self.tr("Stratified random sample"), defaultValue=False)
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT_MATRIX, self.tr("Confusion matrix"), "CSV files (*.csv)")
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT_REPORT, self.tr("Accuracy report"), "HTML files (*.html)")
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT_METRICS,
                self.tr("Metrics (JSON)"),
                "JSON files (*.json)",
                optional=True,
                createByDefault=False,
            )
        )
        self.addOutput(QgsProcessingOutputNumber(self.OA, self.tr("Overall accuracy")))
        self.addOutput(QgsProcessingOutputNumber(self.KAPPA, self.tr("Cohen's kappa")))
        self.addOutput(QgsProcessingOutputNumber(self.MIOU, self.tr("Mean IoU")))

    def normalized_parameters(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """A raster given as REFERENCE (scripts written for the earlier dialogs) moves to REFERENCE_RASTER."""
        params = super().normalized_parameters(parameters, context)
        route_raster(params, context, self.REFERENCE, self.REFERENCE_RASTER)
        return params

    def plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> AccuracyOptions:
        """The :class:`core.assessment.compare.AccuracyOptions` of ``parameters``.

        A vector reference that OGR cannot read as it is (memory layer, database, filter) is first
        copied to a temporary GeoPackage (:func:`algorithms.parameters.vector_file`).

        Raises:
            InputError: no classified raster, no reference or two (polygons and a raster), or ignore values
                that are not integers.
        """
        from ..core.assessment.compare import AccuracyOptions

        parameters = self.normalized_parameters(parameters, context)
        raster = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if raster is None:
            raise InputError("Choose the classified raster.")
        layer_name = None
        ref_raster = self.parameterAsRasterLayer(parameters, self.REFERENCE_RASTER, context)
        ref_vector = self.parameterAsVectorLayer(parameters, self.REFERENCE, context)
        if ref_raster is not None and ref_vector is not None:
            raise InputError("Give either reference polygons or points, or a reference raster, not both.")
        if ref_raster is not None:
            ref_path = layer_path(ref_raster)
        elif ref_vector is not None:
            ref_path, layer_name = vector_file(ref_vector, context, "reference")
        else:
            raise InputError("Choose the reference: polygons or points with their class field, or a reference raster.")
        return AccuracyOptions(
            classified=layer_path(raster),
            reference=ref_path,
            reference_field=self.parameterAsString(parameters, self.REFERENCE_FIELD, context) or None,
            reference_layer=layer_name,
            class_table=self.parameterAsFile(parameters, self.CLASS_TABLE, context) or None,
            ignore=parse_ignore_values(self.parameterAsString(parameters, self.IGNORE_VALUES, context)),
            stratified=True if self.parameterAsBoolean(parameters, self.STRATIFIED, context) else None,
            matrix_path=self.parameterAsFileOutput(parameters, self.OUTPUT_MATRIX, context),
            metrics_path=self.parameterAsFileOutput(parameters, self.OUTPUT_METRICS, context) or None,
            report_path=self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context),
            title=f"Accuracy of {raster.name()}",
        )

    def run_core(self, parameters: dict[str, Any], context: QgsProcessingContext, feedback) -> dict[str, Any]:  # noqa: D102
        from ..core.assessment.compare import compute_accuracy

        options = self.plan(parameters, context)
        rep = compute_accuracy(options, feedback)
        results: dict[str, Any] = {self.OUTPUT_MATRIX: options.matrix_path}
        if options.metrics_path:
            results[self.OUTPUT_METRICS] = options.metrics_path
        results[self.OUTPUT_REPORT] = options.report_path
        results.update({self.OA: rep.overall_accuracy, self.KAPPA: rep.kappa, self.MIOU: rep.mean_iou})
        return results
