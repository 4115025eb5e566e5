"""Processing algorithm ``deeplandcover:exporttrainingtiles`` over :func:`core.chips.export.export_training_tiles`.

Thin layer: parameters -> a :class:`core.chips.options.ExportOptions` (:meth:`ExportTrainingTilesAlgorithm.plan`,
testable without running) -> core call -> outputs. Layers that are not plain files (memory layers,
filtered layers, database layers) are first written to a temporary GeoPackage so core can read them
(:func:`algorithms.parameters.vector_file`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from ..core import deps
from .base import DlcAlgorithm
from .parameters import (
    add_valid_mask_parameters,
    advanced,
    layer_path,
    raster_layer_paths,
    route_raster,
    valid_mask_values,
    vector_file,
)
from .qtcompat import (
    FILE_BEHAVIOR_FILE,
    NUMBER_DOUBLE,
    NUMBER_INTEGER,
    SOURCE_RASTER,
    SOURCE_VECTOR_ANY_GEOMETRY,
    SOURCE_VECTOR_POLYGON,
)
from .wording import temporary_output_warning

if TYPE_CHECKING:
    from ..core.chips.options import CleaningOptions, ExportOptions

HELP = """<p>Cuts georeferenced training chips from imagery and labels, the counterpart of ArcGIS
<i>Export Training Data For Deep Learning</i> (metadata format Classified Tiles). The output folder holds
<code>images/</code>, <code>images2/</code> (second date), <code>labels/</code> (uint8 GeoTIFF, 255 = no label),
<code>map.txt</code> and <code>esri_accumulated_stats.json</code> (readable by ArcGIS/arcgis.learn) and
<code>manifest.json</code> (band statistics, classes, chip windows and spatial blocks for Train Model).</p>
<ul>
<li><b>Input raster(s)</b>: one raster, or several rasters of one grid as a time series, oldest first (dates read
from the file names, e.g. 2015-07-11; a sequence chip has T&times;C bands, date-major).</li>
<li><b>Label polygons or lines</b> with their <b>class field</b> (integer class values, or text names matched against
the class table). Vectors in another CRS are reprojected; smaller polygons win over larger ones they lie in;
unlabelled pixels get 255. <b>Or</b> a <b>label raster</b> (a classified raster); then leave the polygons empty.</li>
<li><b>Class table</b> (optional): CSV with columns value,name and color (#RRGGBB) or red,green,blue.
Rows named "unlabelled"/"no data" are written as 255.</li>
<li><b>Tile size / Stride</b> (pixels): chips start every stride pixels; only whole chips are written.</li>
<li><b>Output chip folder</b>: must be empty or new. Left empty, QGIS writes a temporary folder that it deletes
when it closes: choose a folder to keep the chips.</li>
</ul>
<p>Advanced parameters:</p>
<ul>
<li><b>Second-date raster</b> (optional): same grid as the input; chips go to <code>images2/</code> for change detection.</li>
<li><b>Area of interest</b> (optional): only chips fully inside these polygons are written.</li>
<li><b>Hold-out area</b> (optional): chips touching these polygons are kept for validation only.</li>
<li><b>Minimum labelled fraction</b>: chips with a smaller share of labelled pixels are skipped,
unless <b>Export chips without labels</b> is checked.</li>
<li><b>Line label buffer</b> (pixels): widens line labels such as roads by morphological dilation.</li>
<li><b>Class edge erosion</b> (pixels): pixels this close to a class edge are set to 255.</li>
<li><b>Bands</b> (optional): 1-based band numbers to keep, e.g. 2,3,4,8.</li>
<li><b>Other sensors</b> (optional): rasters of other sensors on the same grid (e.g. Sentinel-1 VV/VH)
stacked after the input bands (early fusion); their bands are named <i>file name</i>_<i>band</i>. Train them
with any single-date architecture, or with the two-branch U-Net (one encoder per sensor).</li>
<li><b>Water class</b> (optional): labels of this class whose NDWI (green/NIR, found by band name) is below the
<b>NDWI water threshold</b>, other labels whose NDWI is above threshold + <b>NDWI margin</b>, and (time series)
pixels whose water state flips between dates are set to 255 (inconsistent shorelines).</li>
<li><b>Valid-data / cloud masks</b> (optional): a raster with one band per date (or with the dates as band
descriptions); <b>mask type</b>: valid-data mask (1 = valid), cloud mask (1 = cloud) or cloud probability (cloudy
at or above the <b>cloud probability threshold</b>).</li>
<li><b>Cloud policy</b>: mask only (masked pixels become nodata), drop cloudy dates (dates with less than the
<b>minimum valid coverage</b> in a chip become nodata in that chip; single images: such chips are skipped) or
interpolate in time (time series: gaps filled by linear interpolation between the valid observations).</li>
</ul>
<p>A label raster has a box of its own (QGIS crashed when the class field's layer was a raster);
scripts that pass a raster as the label polygons still work.</p>"""

SHORT = "Cut image chips and label chips for Train Model (ArcGIS Classified Tiles) from imagery and labels."


class ExportTrainingTilesAlgorithm(DlcAlgorithm):
    """Export Training Tiles (see module docstring and HELP)."""

    ALG_NAME = "exporttrainingtiles"
    ALG_DISPLAY = "Export Training Tiles"
    ALG_GROUP = "1. Training data"
    ALG_GROUP_ID = "trainingdata"
    REQUIREMENTS = deps.VECTOR
    HELP = HELP
    SHORT = SHORT
    HELP_PAGE = "docs/exporttrainingtiles.md"

    INPUT = "INPUT"
    ADDITIONAL_INPUT = "ADDITIONAL_INPUT"
    LABELS = "LABELS"
    LABELS_RASTER = "LABELS_RASTER"
    CLASS_FIELD = "CLASS_FIELD"
    CLASS_TABLE = "CLASS_TABLE"
    TILE_SIZE = "TILE_SIZE"
    STRIDE = "STRIDE"
    AOI = "AOI"
    HOLDOUT = "HOLDOUT"
    MIN_LABELLED_FRACTION = "MIN_LABELLED_FRACTION"
    EXPORT_EMPTY = "EXPORT_EMPTY"
    LINE_BUFFER_PX = "LINE_BUFFER_PX"
    EDGE_EROSION_PX = "EDGE_EROSION_PX"
    BANDS = "BANDS"
    ADDITIONAL_SENSORS = "ADDITIONAL_SENSORS"
    WATER_MASK_CLASS = "WATER_MASK_CLASS"
    NDWI_THRESHOLD = "NDWI_THRESHOLD"
    NDWI_MARGIN = "NDWI_MARGIN"
    # VALID_MASKS, MASK_TYPE, CLOUD_THRESHOLD: the valid-mask group of algorithms.parameters
    CLOUD_POLICY = "CLOUD_POLICY"
    MIN_VALID_COVERAGE = "MIN_VALID_COVERAGE"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    CHIP_COUNT = "CHIP_COUNT"

    #: Core's ``cloud_policy`` values, in the order of the CLOUD_POLICY enum.
    CLOUD_POLICIES = ("none", "drop", "interpolate")
    CLOUD_POLICY_LABELS = ("Mask only", "Drop cloudy dates", "Interpolate in time")

    def initAlgorithm(self, config: dict | None = None) -> None:
        """Declare the parameters (keys are Processing API); what a first run needs comes first, the rest is
        advanced."""
        self._add_input_parameters()
        self._add_chip_parameters()
        self._add_cleaning_parameters()
        self.addOutput(QgsProcessingOutputNumber(self.CHIP_COUNT, self.tr("Number of chips")))

    def _add_input_parameters(self) -> None:
        self.addParameter(
            QgsProcessingParameterMultipleLayers(self.INPUT, self.tr("Input raster(s), oldest first"), SOURCE_RASTER)
        )
        # The field's parent takes vectors only: QGIS's field widget crashes on a raster parent (issue #26).
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                self.LABELS,
                self.tr("Label polygons or lines"),
                [SOURCE_VECTOR_ANY_GEOMETRY],
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.CLASS_FIELD, self.tr("Class field"), parentLayerParameterName=self.LABELS, optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.LABELS_RASTER, self.tr("Or: label raster"), optional=True)
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.CLASS_TABLE, self.tr("Class table (CSV)"), FILE_BEHAVIOR_FILE, extension="csv", optional=True
            )
        )

    def _add_chip_parameters(self) -> None:
        integer, double = NUMBER_INTEGER, NUMBER_DOUBLE
        self.addParameter(
            QgsProcessingParameterNumber(self.TILE_SIZE, self.tr("Tile size (pixels)"), integer, 256, minValue=8)
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.STRIDE, self.tr("Stride (pixels)"), integer, 128, minValue=1)
        )
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Output chip folder")))
        polygons = [SOURCE_VECTOR_POLYGON]
        for p in (
            QgsProcessingParameterRasterLayer(self.ADDITIONAL_INPUT, self.tr("Second-date raster"), optional=True),
            QgsProcessingParameterVectorLayer(self.AOI, self.tr("Area of interest"), polygons, optional=True),
            QgsProcessingParameterVectorLayer(
                self.HOLDOUT, self.tr("Hold-out area (validation)"), polygons, optional=True
            ),
            QgsProcessingParameterNumber(
                self.MIN_LABELLED_FRACTION,
                self.tr("Minimum labelled fraction"),
                double,
                0.05,
                minValue=0.0,
                maxValue=1.0,
            ),
            QgsProcessingParameterBoolean(self.EXPORT_EMPTY, self.tr("Export chips without labels"), False),
            QgsProcessingParameterNumber(
                self.LINE_BUFFER_PX, self.tr("Line label buffer (pixels)"), integer, 0, minValue=0
            ),
            QgsProcessingParameterNumber(
                self.EDGE_EROSION_PX, self.tr("Class edge erosion (pixels)"), integer, 0, minValue=0
            ),
            QgsProcessingParameterString(self.BANDS, self.tr("Bands (e.g. 2,3,4,8)"), optional=True),
        ):
            self.addParameter(advanced(p))

    def _add_cleaning_parameters(self) -> None:
        double = NUMBER_DOUBLE
        for p in (
            QgsProcessingParameterMultipleLayers(
                self.ADDITIONAL_SENSORS, self.tr("Other sensors (same grid)"), SOURCE_RASTER, optional=True
            ),
            QgsProcessingParameterNumber(
                self.WATER_MASK_CLASS,
                self.tr("Water class (NDWI masking)"),
                NUMBER_INTEGER,
                None,
                optional=True,
                minValue=0,
                maxValue=254,
            ),
            QgsProcessingParameterNumber(
                self.NDWI_THRESHOLD, self.tr("NDWI water threshold"), double, 0.0, minValue=-1.0, maxValue=1.0
            ),
            QgsProcessingParameterNumber(
                self.NDWI_MARGIN, self.tr("NDWI margin"), double, 0.2, minValue=0.0, maxValue=2.0
            ),
        ):
            self.addParameter(advanced(p))
        add_valid_mask_parameters(self)
        for p in (
            QgsProcessingParameterEnum(
                self.CLOUD_POLICY,
                self.tr("Cloud policy"),
                [self.tr(p) for p in self.CLOUD_POLICY_LABELS],
                defaultValue=0,
            ),
            QgsProcessingParameterNumber(
                self.MIN_VALID_COVERAGE, self.tr("Minimum valid coverage"), double, 0.0, minValue=0.0, maxValue=1.0
            ),
        ):
            self.addParameter(advanced(p))

    def normalized_parameters(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """A raster given as LABELS (scripts written for the earlier dialogs) moves to LABELS_RASTER."""
        params = super().normalized_parameters(parameters, context)
        route_raster(params, context, self.LABELS, self.LABELS_RASTER)
        return params

    # -- parameters -> plan -------------------------------------------------------------------
    def plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> ExportOptions:
        """The :class:`core.chips.options.ExportOptions` that :meth:`run_core` exports with (no side effects
        beyond temporary copies of layers that are not plain files).

        Raises:
            QgsProcessingException: an input layer is missing or unreadable, or BANDS is malformed.
        """
        from ..core.chips.options import ExportOptions
        from ..core.chips.sources import parse_bands

        parameters = self.normalized_parameters(parameters, context)
        images = raster_layer_paths(self, parameters, self.INPUT, context)
        if not images:
            raise QgsProcessingException(self.tr("Choose at least one input raster."))
        second = self.parameterAsRasterLayer(parameters, self.ADDITIONAL_INPUT, context)
        label_path, layer = self._labels(parameters, context)
        aoi = self.parameterAsVectorLayer(parameters, self.AOI, context)
        hold = self.parameterAsVectorLayer(parameters, self.HOLDOUT, context)
        try:
            bands = parse_bands(self.parameterAsString(parameters, self.BANDS, context))
        except ValueError as e:
            raise QgsProcessingException(str(e)) from e
        return ExportOptions(
            images=images,
            labels=label_path,
            out_dir=self.parameterAsString(parameters, self.OUTPUT_FOLDER, context),
            class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context) or None,
            layer=layer,
            images2=layer_path(second) if second else None,
            class_table=self.parameterAsFile(parameters, self.CLASS_TABLE, context) or None,
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            stride=self.parameterAsInt(parameters, self.STRIDE, context),
            aoi=vector_file(aoi, context, "aoi")[0] if aoi else None,
            holdout=vector_file(hold, context, "holdout")[0] if hold else None,
            min_labelled_fraction=self.parameterAsDouble(parameters, self.MIN_LABELLED_FRACTION, context),
            export_empty=self.parameterAsBool(parameters, self.EXPORT_EMPTY, context),
            line_buffer_px=self.parameterAsInt(parameters, self.LINE_BUFFER_PX, context),
            edge_erosion_px=self.parameterAsInt(parameters, self.EDGE_EROSION_PX, context),
            bands=bands,
            cleaning=self.cleaning_plan(parameters, context),
        )

    def _labels(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[str, str | None]:
        """(file, layer name inside it) of the labels: the label polygons or lines, or the label raster.

        Raises:
            QgsProcessingException: neither or both given, or a layer that cannot be read.
        """
        given = [k for k in (self.LABELS, self.LABELS_RASTER) if parameters.get(k) not in (None, "")]
        if len(given) != 1:
            raise QgsProcessingException(
                self.tr("Give the labels either as polygons or lines (with their class field) or as a label raster.")
            )
        if given[0] == self.LABELS_RASTER:
            raster = self.parameterAsRasterLayer(parameters, self.LABELS_RASTER, context)
            if raster is None or not raster.isValid():
                raise QgsProcessingException(self.invalidRasterError(parameters, self.LABELS_RASTER))
            return layer_path(raster), None
        vector = self.parameterAsVectorLayer(parameters, self.LABELS, context)
        if vector is None or not vector.isValid():
            raise QgsProcessingException(self.invalidSourceError(parameters, self.LABELS))
        return vector_file(vector, context)

    def cleaning_plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> CleaningOptions:
        """The :class:`core.chips.options.CleaningOptions`: sensor fusion, water masking, valid masks, cloud policy.

        Raises:
            QgsProcessingException: a sensor or mask layer is not a valid raster.
        """
        from ..core.chips.options import CleaningOptions

        water = parameters.get(self.WATER_MASK_CLASS)
        masks = valid_mask_values(self, parameters, context)
        return CleaningOptions(
            additional_sensors=raster_layer_paths(self, parameters, self.ADDITIONAL_SENSORS, context) or None,
            water_mask_class=self.parameterAsInt(parameters, self.WATER_MASK_CLASS, context)
            if water not in (None, "")
            else None,
            ndwi_threshold=self.parameterAsDouble(parameters, self.NDWI_THRESHOLD, context),
            ndwi_margin=self.parameterAsDouble(parameters, self.NDWI_MARGIN, context),
            valid_masks=masks.path,
            mask_kind=masks.kind,
            cloud_threshold=masks.threshold,
            cloud_policy=self.CLOUD_POLICIES[self.parameterAsEnum(parameters, self.CLOUD_POLICY, context)],
            min_valid_coverage=self.parameterAsDouble(parameters, self.MIN_VALID_COVERAGE, context),
        )

    def run_core(self, parameters: dict[str, Any], context: QgsProcessingContext, feedback) -> dict[str, Any]:
        """Export the chips of :meth:`plan`; outputs OUTPUT_FOLDER and CHIP_COUNT."""
        from ..core.chips.export import export_training_tiles

        options = self.plan(parameters, context)
        manifest = export_training_tiles(options, feedback)
        feedback.info(f"{len(manifest.chips)} chips ({manifest.kind}) written to {options.out_dir}.")
        warning = temporary_output_warning(str(options.out_dir), "The chip folder")
        if warning:
            feedback.warning(warning)
        return {self.OUTPUT_FOLDER: str(options.out_dir), self.CHIP_COUNT: len(manifest.chips)}
