"""algorithms.wording: parameter ids become the dialog's labels; warnings for degrees and temporary outputs."""

from __future__ import annotations

import os

from qgis.core import QgsCoordinateReferenceSystem, QgsProcessingParameterNumber, QgsProcessingUtils

from deeplandcover.algorithms.wording import geographic_warning, short_label, speak_labels, temporary_output_warning


def test_messages_name_labels_not_ids(qgis_app):
    assert short_label("Tile size (px, 0 = model's)") == "Tile size" and short_label("(only)") == "(only)"
    defs = [QgsProcessingParameterNumber("TILE_SIZE", "Tile size (px)"), QgsProcessingParameterNumber("TILE", "Tile")]
    text = "TILE_SIZE 1000 px is larger than the raster; lower TILE_SIZE or TILE. TILE_SIZES stays."
    assert speak_labels(text, defs) == (
        '"Tile size" 1000 px is larger than the raster; lower "Tile size" or "Tile". TILE_SIZES stays.'
    )
    assert speak_labels(text, []) == text


def test_distances_in_degrees_are_warned_about(qgis_app):
    wgs84, utm = QgsCoordinateReferenceSystem("EPSG:4326"), QgsCoordinateReferenceSystem("EPSG:32633")
    msg = geographic_warning(wgs84, "Minimum distance", 2.0)
    assert "EPSG:4326" in msg and "2.0 degrees" in msg and "about 223 km" in msg
    assert geographic_warning(utm, "Minimum distance", 2.0) is None
    assert geographic_warning(wgs84, "Minimum distance", 0) is None


def test_outputs_in_the_temporary_folder_are_warned_about(qgis_app, tmp_path):
    inside = os.path.join(QgsProcessingUtils.tempFolder(), "classified.tif")
    assert "deletes when it closes" in temporary_output_warning(inside, "The class raster")
    assert temporary_output_warning(str(tmp_path / "classified.tif"), "The class raster") is None
    assert temporary_output_warning("", "The class raster") is None
