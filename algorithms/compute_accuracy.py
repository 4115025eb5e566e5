"""Processing algorithm ``deeplandcover:computeaccuracy`` (Compute Accuracy).

Thin wrapper over :func:`core.accuracy.assess_accuracy` and :mod:`core.accuracy_report`.
Counterpart of ArcGIS "Compute Accuracy For Pixel Classification" / "Compute Confusion Matrix".
"""

from __future__ import annotations

from typing import Any

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
)

from ..core import deps
from ..core.errors import InputError
from .base import DlcAlgorithm, layer_path

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


def _fmt(v: float | None) -> str:
    return "undefined" if v is None else f"{v:.4f}"


def vector_source(layer, context: QgsProcessingContext) -> tuple[str, str | None]:
    """(file path, layer name) of a vector layer; non-file layers are saved to a temporary GeoPackage."""
    if layer.providerType() == "ogr":
        parts = layer.source().split("|")
        name = next((p.split("=", 1)[1] for p in parts[1:] if p.startswith("layername=")), None)
        return parts[0], name
    import os

    from qgis.core import QgsProcessingUtils, QgsVectorFileWriter

    path = os.path.join(QgsProcessingUtils.tempFolder(), f"reference_{abs(hash(layer.id()))}.gpkg")
    opts = QgsVectorFileWriter.SaveVectorOptions()
    opts.driverName = "GPKG"
    err = QgsVectorFileWriter.writeAsVectorFormatV3(layer, path, context.transformContext(), opts)
    if err[0] != QgsVectorFileWriter.WriterError.NoError:
        raise InputError(f"Could not save the reference layer {layer.name()} to a file: {err[1]}")
    return path, None


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

    def initAlgorithm(self, config=None):  # noqa: D102
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Classified raster")))
        self.addParameter(QgsProcessingParameterMapLayer(
            self.REFERENCE, self.tr("Reference (classified raster, polygons or points)")))
        self.addParameter(QgsProcessingParameterField(
            self.REFERENCE_FIELD, self.tr("Reference class field (polygons/points)"),
            parentLayerParameterName=self.REFERENCE, optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.CLASS_TABLE, self.tr("Class table CSV (value,name[,color])"), extension="csv", optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.IGNORE_VALUES, self.tr("Class values to ignore (comma-separated)"), defaultValue="255", optional=True))
        self.addParameter(QgsProcessingParameterBoolean(
            self.STRATIFIED, self.tr("Reference points are a stratified random sample (add area-weighted estimates)"),
            defaultValue=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_MATRIX, self.tr("Confusion matrix"), "CSV files (*.csv)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, self.tr("Accuracy report"), "HTML files (*.html)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_METRICS, self.tr("Metrics (JSON)"), "JSON files (*.json)", optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber("OA", self.tr("Overall accuracy")))
        self.addOutput(QgsProcessingOutputNumber("KAPPA", self.tr("Cohen's kappa")))
        self.addOutput(QgsProcessingOutputNumber("MIOU", self.tr("Mean IoU")))

    def run_core(self, parameters: dict[str, Any], context: QgsProcessingContext, feedback) -> dict[str, Any]:  # noqa: D102
        from qgis.core import QgsRasterLayer, QgsVectorLayer

        from ..core.assessment.reference import assess_accuracy
        from ..core.assessment.report import write_matrix_csv, write_metrics_json, write_report_html
        from ..core.feedback import SubFeedback

        raster = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if raster is None:
            raise InputError("Choose the classified raster (INPUT).")
        ref_layer = self.parameterAsLayer(parameters, self.REFERENCE, context)
        if ref_layer is None:
            raise InputError("Choose the reference layer (REFERENCE): a raster, polygons or points.")
        field = self.parameterAsString(parameters, self.REFERENCE_FIELD, context) or None
        layer_name = None
        if isinstance(ref_layer, QgsRasterLayer):
            ref_path = layer_path(ref_layer)
        elif isinstance(ref_layer, QgsVectorLayer):
            ref_path, layer_name = vector_source(ref_layer, context)
        else:
            raise InputError(f"The reference {ref_layer.name()} must be a raster or vector layer.")
        table = self.parameterAsFile(parameters, self.CLASS_TABLE, context) or None
        ignore = parse_ignore_values(self.parameterAsString(parameters, self.IGNORE_VALUES, context))
        stratified = True if self.parameterAsBoolean(parameters, self.STRATIFIED, context) else None
        out_matrix = self.parameterAsFileOutput(parameters, self.OUTPUT_MATRIX, context)
        out_report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context)
        out_metrics = self.parameterAsFileOutput(parameters, self.OUTPUT_METRICS, context)

        rep = assess_accuracy(layer_path(raster), ref_path, reference_field=field, reference_layer=layer_name,
                              class_table=table, ignore=ignore, stratified=stratified,
                              feedback=SubFeedback(feedback, 0, 90))
        write_matrix_csv(rep, out_matrix)
        results: dict[str, Any] = {self.OUTPUT_MATRIX: out_matrix}
        if out_metrics:
            write_metrics_json(rep, out_metrics)
            results[self.OUTPUT_METRICS] = out_metrics
        write_report_html(rep, out_report, title=f"Accuracy of {raster.name()}")
        results[self.OUTPUT_REPORT] = out_report
        feedback.set_progress(100)
        unit = "points" if rep.meta.get("reference_kind") == "points" else "pixels"
        feedback.info(f"Overall accuracy {_fmt(rep.overall_accuracy)}, kappa {_fmt(rep.kappa)}, "
                      f"mean IoU {_fmt(rep.mean_iou)} over {rep.total} {unit}.")
        results.update(OA=rep.overall_accuracy, KAPPA=rep.kappa, MIOU=rep.mean_iou)
        return results
