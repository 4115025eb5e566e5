"""Processing algorithm ``deeplandcover:createaccuracypoints`` (Create Accuracy Assessment Points).

Parameters -> :class:`core.assessment.sampling.AccuracyPointsOptions` (:meth:`CreateAccuracyPointsAlgorithm.plan`)
-> one call of :func:`core.assessment.sampling.create_accuracy_points`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from ..core import deps
from ..core.errors import InputError
from .base import DlcAlgorithm
from .parameters import layer_path
from .qtcompat import NUMBER_DOUBLE, NUMBER_INTEGER
from .wording import geographic_warning

if TYPE_CHECKING:
    from ..core.assessment.sampling import AccuracyPointsOptions

HELP = """Draws random points on a classified raster for an accuracy assessment, to be labelled by hand.
<p><b>Strategy</b>: <i>stratified random</i> places points in each class in proportion to its area;
<i>equalized stratified</i> places the same number in every class (better for rare classes); <i>random</i>
spreads them over all classified pixels. Points sit at pixel centres, at least <b>minimum distance</b>
(in the units of the raster's CRS: metres for UTM, degrees for a geographic CRS such as EPSG:4326, the log
warns) apart; the same <b>seed</b> gives the same points. Nodata and the value 255 are
never sampled.</p>
<p>The point layer has the fields <code>predicted</code> (the map class), <code>reference</code> (empty: fill
it with the true class) and <code>sampling</code>. Give the labelled layer to <i>Compute Accuracy</i> with
class field <code>reference</code>: for stratified designs it adds area estimates with confidence intervals
(Olofsson et al. 2014).</p>"""


class CreateAccuracyPointsAlgorithm(DlcAlgorithm):
    """Stratified / equalized / simple random assessment points on a classified raster."""

    ALG_NAME = "createaccuracypoints"
    ALG_DISPLAY = "Create Accuracy Assessment Points"
    ALG_GROUP = "5. Accuracy assessment"
    ALG_GROUP_ID = "accuracy"
    REQUIREMENTS = deps.METRICS
    HELP = HELP
    SHORT = "Random (stratified) points on a classified raster, to label by hand for Compute Accuracy."
    HELP_PAGE = "docs/createaccuracypoints.md"

    INPUT = "INPUT"
    NUMBER_OF_POINTS = "NUMBER_OF_POINTS"
    STRATEGY = "STRATEGY"
    MIN_DISTANCE = "MIN_DISTANCE"
    SEED = "SEED"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, config=None):  # noqa: D102
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Classified raster")))
        self.addParameter(
            QgsProcessingParameterNumber(
                self.NUMBER_OF_POINTS, self.tr("Number of points"), NUMBER_INTEGER, defaultValue=500, minValue=1
            )
        )
        # in the order of core.assessment.sampling.STRATEGIES
        self.addParameter(
            QgsProcessingParameterEnum(
                self.STRATEGY,
                self.tr("Sampling strategy"),
                options=[self.tr("Stratified random"), self.tr("Equalized stratified random"), self.tr("Random")],
                defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MIN_DISTANCE,
                self.tr("Minimum distance (CRS units, e.g. m)"),
                NUMBER_DOUBLE,
                defaultValue=0.0,
                minValue=0.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"), NUMBER_INTEGER, defaultValue=0, minValue=0)
        )
        self.addParameter(QgsProcessingParameterVectorDestination(self.OUTPUT, self.tr("Assessment points")))

    def plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> AccuracyPointsOptions:
        """The :class:`core.assessment.sampling.AccuracyPointsOptions` of ``parameters``.

        Raises:
            InputError: no classified raster, or an output that is not a GeoPackage.
        """
        from ..core.assessment.sampling import STRATEGIES, AccuracyPointsOptions

        raster = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if raster is None:
            raise InputError("Choose the classified raster.")
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if Path(out).suffix.lower() not in (".gpkg", ""):
            raise InputError(f"Save the assessment points as a GeoPackage (.gpkg), not {Path(out).suffix}.")
        if not Path(out).suffix:
            out += ".gpkg"
        return AccuracyPointsOptions(
            classified=layer_path(raster),
            n_points=self.parameterAsInt(parameters, self.NUMBER_OF_POINTS, context),
            output=out,
            strategy=STRATEGIES[self.parameterAsEnum(parameters, self.STRATEGY, context)],
            min_distance=self.parameterAsDouble(parameters, self.MIN_DISTANCE, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
        )

    def run_core(self, parameters: dict[str, Any], context: QgsProcessingContext, feedback) -> dict[str, Any]:  # noqa: D102
        from ..core.assessment.sampling import create_accuracy_points

        options = self.plan(parameters, context)
        crs = self.parameterAsRasterLayer(parameters, self.INPUT, context).crs()
        warning = geographic_warning(crs, self.tr("Minimum distance"), options.min_distance)
        if warning:
            feedback.warning(warning)
        info = create_accuracy_points(options, feedback)
        feedback.info(f"{info['points']} points written; per class: {info['per_class']}")
        return {self.OUTPUT: options.output}
