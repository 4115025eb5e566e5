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
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
    QgsVectorLayer,
)

from ..core import deps
from .base import DlcAlgorithm
from .parameters import add_valid_mask_parameters, layer_path, raster_layer_paths, valid_mask_values, vector_file
from .qtcompat import (
    FILE_BEHAVIOR_FILE,
    NUMBER_DOUBLE,
    NUMBER_INTEGER,
    SOURCE_RASTER,
    SOURCE_VECTOR_ANY_GEOMETRY,
    SOURCE_VECTOR_POLYGON,
)

if TYPE_CHECKING:
    from ..core.chips.options import CleaningOptions, ExportOptions

HELP = """<p>Cuts georeferenced training chips from imagery and labels, the counterpart of ArcGIS
<i>Export Training Data For Deep Learning</i> (metadata format Classified Tiles). The output folder holds
<code>images/</code>, <code>images2/</code> (second date), <code>labels/</code> (uint8 GeoTIFF, 255 = no label),
<code>map.txt</code> and <code>esri_accumulated_stats.json</code> (readable by ArcGIS/arcgis.learn) and
<code>manifest.json</code> (band statistics, classes, chip windows and spatial blocks for Train Model).</p>
<ul>
<li><b>Input rasters</b>: one raster, or several rasters of one grid as a time series (dates read from the
file names, e.g. 2015-07-11; a sequence chip has T&times;C bands, date-major).</li>
<li><b>Second-date raster</b> (optional): same grid as the input; chips go to <code>images2/</code> for change detection.</li>
<li><b>Labels</b>: a vector layer with a class field, or a classified raster. Vectors in another CRS are
reprojected; smaller polygons win over larger ones they lie in; unlabelled pixels get 255.</li>
<li><b>Class field</b>: integer class values, or text names matched against the class table.</li>
<li><b>Class table</b> (optional): CSV with columns value,name and color (#RRGGBB) or red,green,blue.
Rows named "unlabelled"/"no data" are written as 255.</li>
<li><b>Tile size / Stride</b> (pixels): chips start every stride pixels; only whole chips are written.</li>
<li><b>AOI</b> (optional): only chips fully inside these polygons are written.</li>
<li><b>Hold-out area</b> (optional): chips touching these polygons are kept for validation only.</li>
<li><b>Minimum labelled fraction</b>: chips with a smaller share of labelled pixels are skipped,
unless <b>Export chips without labels</b> is checked.</li>
<li><b>Line label buffer</b> (pixels): widens line labels such as roads by morphological dilation.</li>
<li><b>Class edge erosion</b> (pixels): pixels this close to a class edge are set to 255.</li>
<li><b>Bands</b> (optional): 1-based band numbers to keep, e.g. 2,3,4,8.</li>
<li><b>Additional sensors</b> (optional): rasters of other sensors on the same grid (e.g. Sentinel-1 VV/VH)
stacked after the input bands (early fusion); their bands are named <i>file name</i>_<i>band</i>. Train them
with any single-date architecture, or with the two-branch U-Net (one encoder per sensor).</li>
<li><b>Water class</b> (optional): labels of this class whose NDWI (green/NIR, found by band name) is below the
<b>NDWI threshold</b>, other labels whose NDWI is above threshold + margin, and (time series) pixels whose
water state flips between dates are set to 255 (inconsistent shorelines).</li>
<li><b>Valid-data masks</b> (optional): a raster with one band per date (or with the dates as band
descriptions): valid-data mask (1 = valid), cloud mask (1 = cloud) or cloud probability (cloudy at or above
the <b>cloud probability threshold</b>).</li>
<li><b>Cloud policy</b>: none (masked pixels become nodata), drop (dates with less than the <b>minimum valid
coverage</b> in a chip become nodata in that chip; single images: such chips are skipped) or interpolate
(time series: gaps filled by linear interpolation in time between the valid observations).</li>
<li><b>Output folder</b>: must be empty or new.</li>
</ul>"""


class ExportTrainingTilesAlgorithm(DlcAlgorithm):
    """Export Training Tiles (see module docstring and HELP)."""

    ALG_NAME = "exporttrainingtiles"
    ALG_DISPLAY = "Export Training Tiles"
    ALG_GROUP = "Training data"
    ALG_GROUP_ID = "trainingdata"
    REQUIREMENTS = deps.VECTOR
    HELP = HELP

    INPUT = "INPUT"
    ADDITIONAL_INPUT = "ADDITIONAL_INPUT"
    LABELS = "LABELS"
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

    def initAlgorithm(self, config: dict | None = None) -> None:
        """Declare the parameters (keys and order are Processing API)."""
        self._add_input_parameters()
        self._add_chip_parameters()
        self._add_cleaning_parameters()
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Output chip folder")))
        self.addOutput(QgsProcessingOutputNumber(self.CHIP_COUNT, self.tr("Number of chips")))

    def _add_input_parameters(self) -> None:
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.INPUT, self.tr("Input raster(s) (several = time series, oldest first)"), SOURCE_RASTER
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(
                self.ADDITIONAL_INPUT, self.tr("Second-date raster (change detection)"), optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterMapLayer(
                self.LABELS,
                self.tr("Labels (vector layer or classified raster)"),
                types=[SOURCE_VECTOR_ANY_GEOMETRY, SOURCE_RASTER],
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.CLASS_FIELD,
                self.tr("Class field (vector labels)"),
                parentLayerParameterName=self.LABELS,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.CLASS_TABLE,
                self.tr("Class table (CSV: value,name,color)"),
                FILE_BEHAVIOR_FILE,
                extension="csv",
                optional=True,
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
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                self.AOI, self.tr("Area of interest (chips fully inside)"), [SOURCE_VECTOR_POLYGON], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                self.HOLDOUT, self.tr("Hold-out area (validation-only chips)"), [SOURCE_VECTOR_POLYGON], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MIN_LABELLED_FRACTION,
                self.tr("Minimum labelled fraction of a chip"),
                double,
                0.05,
                minValue=0.0,
                maxValue=1.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(self.EXPORT_EMPTY, self.tr("Export chips without (enough) labels"), False)
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.LINE_BUFFER_PX, self.tr("Line label buffer (pixels)"), integer, 0, minValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.EDGE_EROSION_PX, self.tr("Class edge erosion (pixels)"), integer, 0, minValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                self.BANDS, self.tr("Bands to export (1-based, e.g. 2,3,4,8; empty = all)"), optional=True
            )
        )

    def _add_cleaning_parameters(self) -> None:
        integer, double = NUMBER_INTEGER, NUMBER_DOUBLE
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.ADDITIONAL_SENSORS,
                self.tr("Additional sensors (rasters on the same grid, stacked as extra bands)"),
                SOURCE_RASTER,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.WATER_MASK_CLASS,
                self.tr("Water class value (mask inconsistent shorelines by NDWI)"),
                integer,
                None,
                optional=True,
                minValue=0,
                maxValue=254,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.NDWI_THRESHOLD, self.tr("NDWI water threshold"), double, 0.0, minValue=-1.0, maxValue=1.0
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.NDWI_MARGIN, self.tr("NDWI margin for non-water labels"), double, 0.2, minValue=0.0, maxValue=2.0
            )
        )
        add_valid_mask_parameters(self)
        self.addParameter(
            QgsProcessingParameterEnum(
                self.CLOUD_POLICY, self.tr("Cloud policy"), [self.tr(p) for p in self.CLOUD_POLICIES], defaultValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MIN_VALID_COVERAGE,
                self.tr("Minimum valid coverage of a date in a chip"),
                double,
                0.0,
                minValue=0.0,
                maxValue=1.0,
            )
        )

    # -- parameters -> plan -------------------------------------------------------------------
    def plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> ExportOptions:
        """The :class:`core.chips.options.ExportOptions` that :meth:`run_core` exports with (no side effects
        beyond temporary copies of layers that are not plain files).

        Raises:
            QgsProcessingException: an input layer is missing or unreadable, or BANDS is malformed.
        """
        from ..core.chips.options import ExportOptions
        from ..core.chips.sources import parse_bands

        images = raster_layer_paths(self, parameters, self.INPUT, context)
        if not images:
            raise QgsProcessingException(self.tr("Choose at least one input raster (INPUT)."))
        second = self.parameterAsRasterLayer(parameters, self.ADDITIONAL_INPUT, context)
        labels = self.parameterAsLayer(parameters, self.LABELS, context)
        if labels is None or not labels.isValid():
            raise QgsProcessingException(self.invalidSourceError(parameters, self.LABELS))
        label_path, layer = (
            vector_file(labels, context) if isinstance(labels, QgsVectorLayer) else (layer_path(labels), None)
        )
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
        return {self.OUTPUT_FOLDER: str(options.out_dir), self.CHIP_COUNT: len(manifest.chips)}
