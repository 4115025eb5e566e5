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
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsRasterLayer,
    QgsVectorLayer,
)

from ..core import deps
from ..core.errors import InputError
from .base import DlcAlgorithm
from .parameters import layer_path, vector_file

if TYPE_CHECKING:
    from ..core.assessment.compare import AccuracyOptions

HELP = """Compares a classified raster with reference data and reports its accuracy.
<p><b>Reference</b>: a classified raster (any grid: it is aligned onto the classified raster with nearest
neighbour), polygons or points with an integer <b>class field</b> holding the same class values as the
classification. Polygons are rasterized onto the classified grid (pixel centre inside); points are compared
with the pixel under them.</p>
<p><b>Outputs</b>: the confusion matrix as CSV (rows = reference, columns = predicted, headed by class names),
an HTML report with a heat map, overall accuracy, Cohen's kappa, per-class precision (user's accuracy), recall
(producer's accuracy), F1, IoU, support, mean IoU and macro F1; optionally all figures as JSON. Undefined scores
(e.g. the precision of a class never predicted) are left empty.</p>
<p><b>Ignore values</b>: class values excluded on both sides, comma-separated (default 255 = no label); each
raster's nodata is always excluded. Reference classes that the classification does not know are listed in
the report and left out of the matrix.</p>
<p><b>Stratified sample</b>: when the reference is a point layer made by <i>Create Accuracy Assessment Points</i>
(stratified random or equalized stratified) or this box is ticked, the report adds the area-weighted estimates of
Olofsson et al. (2014): error matrix of area proportions, overall/user's/producer's accuracy and class areas with
95 % confidence intervals.</p>
<p><b>Class table</b> (optional): a CSV <code>value,name[,color]</code> naming the classes; by default the
names of the classified raster's QML style are used.</p>"""


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
    ALG_GROUP = "Accuracy assessment"
    ALG_GROUP_ID = "accuracy"
    REQUIREMENTS = deps.METRICS
    HELP = HELP

    INPUT = "INPUT"
    REFERENCE = "REFERENCE"
    REFERENCE_FIELD = "REFERENCE_FIELD"
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
        self.addParameter(
            QgsProcessingParameterMapLayer(self.REFERENCE, self.tr("Reference (classified raster, polygons or points)"))
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.REFERENCE_FIELD,
                self.tr("Reference class field (polygons/points)"),
                parentLayerParameterName=self.REFERENCE,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.CLASS_TABLE, self.tr("Class table CSV (value,name[,color])"), extension="csv", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                self.IGNORE_VALUES,
                self.tr("Class values to ignore (comma-separated)"),
                defaultValue="255",
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.STRATIFIED,
                self.tr("Reference points are a stratified random sample (add area-weighted estimates)"),
                defaultValue=False,
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

    def plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> AccuracyOptions:
        """The :class:`core.assessment.compare.AccuracyOptions` of ``parameters``.

        A vector reference that OGR cannot read as it is (memory layer, database, filter) is first
        copied to a temporary GeoPackage (:func:`algorithms.parameters.vector_file`).

        Raises:
            InputError: no classified raster, no reference, a reference that is neither raster nor
                vector, or ignore values that are not integers.
        """
        from ..core.assessment.compare import AccuracyOptions

        raster = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if raster is None:
            raise InputError("Choose the classified raster (INPUT).")
        ref_layer = self.parameterAsLayer(parameters, self.REFERENCE, context)
        if ref_layer is None:
            raise InputError("Choose the reference layer (REFERENCE): a raster, polygons or points.")
        layer_name = None
        if isinstance(ref_layer, QgsRasterLayer):
            ref_path = layer_path(ref_layer)
        elif isinstance(ref_layer, QgsVectorLayer):
            ref_path, layer_name = vector_file(ref_layer, context, "reference")
        else:
            raise InputError(f"The reference {ref_layer.name()} must be a raster or vector layer.")
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
