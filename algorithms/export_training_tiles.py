"""Processing algorithm ``deeplandcover:exporttrainingtiles`` over :func:`core.chips.export_training_tiles`.

Thin layer: parameters -> a plain keyword dict (:meth:`ExportTrainingTilesAlgorithm.plan`, testable
without running) -> core call -> outputs. Layers that are not plain files (memory layers, filtered
layers, database layers) are first written to a temporary GeoPackage so core can read them.
"""

from __future__ import annotations

from typing import Any

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
    QgsProcessingUtils,
    QgsProviderRegistry,
    QgsRasterLayer,
    QgsVectorFileWriter,
    QgsVectorLayer,
)

from ..core import deps
from .base import DlcAlgorithm, layer_path
from .qtcompat import (
    FILE_BEHAVIOR_FILE,
    NUMBER_DOUBLE,
    NUMBER_INTEGER,
    SOURCE_RASTER,
    SOURCE_VECTOR_ANY_GEOMETRY,
    SOURCE_VECTOR_POLYGON,
)

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
    VALID_MASKS = "VALID_MASKS"
    MASK_TYPE = "MASK_TYPE"
    CLOUD_THRESHOLD = "CLOUD_THRESHOLD"
    CLOUD_POLICY = "CLOUD_POLICY"
    MIN_VALID_COVERAGE = "MIN_VALID_COVERAGE"
    MASK_TYPES = ("valid", "cloud", "probability")
    CLOUD_POLICIES = ("none", "drop", "interpolate")
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    CHIP_COUNT = "CHIP_COUNT"

    def initAlgorithm(self, config: dict | None = None) -> None:  # noqa: D102
        integer, double = NUMBER_INTEGER, NUMBER_DOUBLE
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.INPUT, self.tr("Input raster(s) (several = time series, oldest first)"), SOURCE_RASTER))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.ADDITIONAL_INPUT, self.tr("Second-date raster (change detection)"), optional=True))
        self.addParameter(QgsProcessingParameterMapLayer(
            self.LABELS, self.tr("Labels (vector layer or classified raster)"),
            types=[SOURCE_VECTOR_ANY_GEOMETRY, SOURCE_RASTER]))
        self.addParameter(QgsProcessingParameterField(
            self.CLASS_FIELD, self.tr("Class field (vector labels)"), parentLayerParameterName=self.LABELS,
            optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.CLASS_TABLE, self.tr("Class table (CSV: value,name,color)"), FILE_BEHAVIOR_FILE,
            extension="csv", optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.TILE_SIZE, self.tr("Tile size (pixels)"), integer, 256, minValue=8))
        self.addParameter(QgsProcessingParameterNumber(self.STRIDE, self.tr("Stride (pixels)"), integer, 128, minValue=1))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.AOI, self.tr("Area of interest (chips fully inside)"), [SOURCE_VECTOR_POLYGON], optional=True))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.HOLDOUT, self.tr("Hold-out area (validation-only chips)"), [SOURCE_VECTOR_POLYGON],
            optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_LABELLED_FRACTION, self.tr("Minimum labelled fraction of a chip"), double, 0.05,
            minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.EXPORT_EMPTY, self.tr("Export chips without (enough) labels"), False))
        self.addParameter(QgsProcessingParameterNumber(
            self.LINE_BUFFER_PX, self.tr("Line label buffer (pixels)"), integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.EDGE_EROSION_PX, self.tr("Class edge erosion (pixels)"), integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterString(
            self.BANDS, self.tr("Bands to export (1-based, e.g. 2,3,4,8; empty = all)"), optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.ADDITIONAL_SENSORS, self.tr("Additional sensors (rasters on the same grid, stacked as extra bands)"),
            SOURCE_RASTER, optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.WATER_MASK_CLASS, self.tr("Water class value (mask inconsistent shorelines by NDWI)"), integer,
            None, optional=True, minValue=0, maxValue=254))
        self.addParameter(QgsProcessingParameterNumber(
            self.NDWI_THRESHOLD, self.tr("NDWI water threshold"), double, 0.0, minValue=-1.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.NDWI_MARGIN, self.tr("NDWI margin for non-water labels"), double, 0.2, minValue=0.0, maxValue=2.0))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.VALID_MASKS, self.tr("Valid-data / cloud masks (one band per date)"), optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.MASK_TYPE, self.tr("Mask type"), ["valid-data mask (1 = valid)", "cloud mask (1 = cloud)",
                                                   "cloud probability"], defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.CLOUD_THRESHOLD, self.tr("Cloud probability threshold (raster units)"), double, 0.5, minValue=0.0))
        self.addParameter(QgsProcessingParameterEnum(
            self.CLOUD_POLICY, self.tr("Cloud policy"), list(self.CLOUD_POLICIES), defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_VALID_COVERAGE, self.tr("Minimum valid coverage of a date in a chip"), double, 0.0,
            minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Output chip folder")))
        self.addOutput(QgsProcessingOutputNumber(self.CHIP_COUNT, self.tr("Number of chips")))

    # -- parameters -> plan -------------------------------------------------------------------
    def plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """Keyword arguments of :func:`core.chips.export_training_tiles` for ``parameters``.

        Raises:
            QgsProcessingException: an input layer is missing or unreadable.
        """
        from ..core.chips.export import parse_bands

        rasters = self.parameterAsLayerList(parameters, self.INPUT, context)
        if not rasters:
            raise QgsProcessingException(self.tr("Choose at least one input raster (INPUT)."))
        images = []
        for lyr in rasters:
            if not isinstance(lyr, QgsRasterLayer) or not lyr.isValid():
                raise QgsProcessingException(self.tr(f"Input layer {lyr.name() if lyr else '?'} is not a valid raster."))
            images.append(layer_path(lyr))
        second = self.parameterAsRasterLayer(parameters, self.ADDITIONAL_INPUT, context)
        labels = self.parameterAsLayer(parameters, self.LABELS, context)
        if labels is None or not labels.isValid():
            raise QgsProcessingException(self.invalidSourceError(parameters, self.LABELS))
        layer = None
        if isinstance(labels, QgsVectorLayer):
            label_path, layer = vector_file(labels, context)
        else:
            label_path = layer_path(labels)
        field = self.parameterAsString(parameters, self.CLASS_FIELD, context) or None
        table = self.parameterAsFile(parameters, self.CLASS_TABLE, context) or None
        aoi = self.parameterAsVectorLayer(parameters, self.AOI, context)
        hold = self.parameterAsVectorLayer(parameters, self.HOLDOUT, context)
        try:
            bands = parse_bands(self.parameterAsString(parameters, self.BANDS, context))
        except ValueError as e:
            raise QgsProcessingException(str(e)) from e
        return {
            "images": images, "labels": label_path, "out_dir": self.parameterAsString(parameters, self.OUTPUT_FOLDER, context),
            "class_field": field, "layer": layer, "images2": layer_path(second) if second else None,
            "class_table": table, "tile_size": self.parameterAsInt(parameters, self.TILE_SIZE, context),
            "stride": self.parameterAsInt(parameters, self.STRIDE, context),
            "aoi": vector_file(aoi, context)[0] if aoi else None,
            "holdout": vector_file(hold, context)[0] if hold else None,
            "min_labelled_fraction": self.parameterAsDouble(parameters, self.MIN_LABELLED_FRACTION, context),
            "export_empty": self.parameterAsBool(parameters, self.EXPORT_EMPTY, context),
            "line_buffer_px": self.parameterAsInt(parameters, self.LINE_BUFFER_PX, context),
            "edge_erosion_px": self.parameterAsInt(parameters, self.EDGE_EROSION_PX, context),
            "bands": bands, **self.preprocessing_plan(parameters, context),
        }

    def preprocessing_plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """Keyword arguments of the seed methods (sensors, water masking, cloud masks and policy).

        Raises:
            QgsProcessingException: a sensor or mask layer is not a valid raster.
        """
        sensors = []
        for lyr in self.parameterAsLayerList(parameters, self.ADDITIONAL_SENSORS, context) or []:
            if not isinstance(lyr, QgsRasterLayer) or not lyr.isValid():
                raise QgsProcessingException(self.tr(f"Sensor layer {lyr.name() if lyr else '?'} is not a valid raster."))
            sensors.append(layer_path(lyr))
        masks = self.parameterAsRasterLayer(parameters, self.VALID_MASKS, context)
        water = parameters.get(self.WATER_MASK_CLASS)
        return {
            "additional_sensors": sensors or None,
            "water_mask_class": self.parameterAsInt(parameters, self.WATER_MASK_CLASS, context)
            if water not in (None, "") else None,
            "ndwi_threshold": self.parameterAsDouble(parameters, self.NDWI_THRESHOLD, context),
            "ndwi_margin": self.parameterAsDouble(parameters, self.NDWI_MARGIN, context),
            "valid_masks": layer_path(masks) if masks else None,
            "mask_kind": self.MASK_TYPES[self.parameterAsEnum(parameters, self.MASK_TYPE, context)],
            "cloud_threshold": self.parameterAsDouble(parameters, self.CLOUD_THRESHOLD, context),
            "cloud_policy": self.CLOUD_POLICIES[self.parameterAsEnum(parameters, self.CLOUD_POLICY, context)],
            "min_valid_coverage": self.parameterAsDouble(parameters, self.MIN_VALID_COVERAGE, context),
        }

    def run_core(self, parameters: dict[str, Any], context: QgsProcessingContext, feedback) -> dict[str, Any]:  # noqa: D102
        from ..core.chips.export import export_training_tiles

        kw = self.plan(parameters, context)
        images, labels, out_dir = kw.pop("images"), kw.pop("labels"), kw.pop("out_dir")
        manifest = export_training_tiles(images, labels, out_dir, feedback=feedback, **kw)
        feedback.info(f"{len(manifest.chips)} chips ({manifest.kind}) written to {out_dir}.")
        return {self.OUTPUT_FOLDER: out_dir, self.CHIP_COUNT: len(manifest.chips)}


def vector_file(layer: QgsVectorLayer, context: QgsProcessingContext) -> tuple[str, str | None]:
    """(file path, layer name) core can read for ``layer``; non-file or filtered layers go to a temp GeoPackage.

    Raises:
        QgsProcessingException: the temporary copy cannot be written.
    """
    parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
    path = parts.get("path") or ""
    if layer.providerType() == "ogr" and path and not layer.subsetString() and not path.startswith("/vsimem"):
        import os

        if os.path.isfile(path):
            return path, parts.get("layerName") or None
    tmp = QgsProcessingUtils.generateTempFilename("dlc_labels.gpkg")
    opts = QgsVectorFileWriter.SaveVectorOptions()
    opts.driverName = "GPKG"
    opts.layerName = "labels"
    err = QgsVectorFileWriter.writeAsVectorFormatV3(layer, tmp, context.transformContext(), opts)
    if err[0] != QgsVectorFileWriter.WriterError.NoError:
        raise QgsProcessingException(f"Could not copy layer {layer.name()} to a temporary file: {err[1]}")
    return tmp, "labels"
