"""Export Training Tiles and the chip-folder format (ours and ArcGIS's Classified Tiles).

``options`` (ExportOptions, CleaningOptions), ``export`` (:func:`~core.chips.export.export_training_tiles`,
the per-window pipeline), ``sources`` (input checks), ``labels`` and ``morphology`` (label rasters),
``cleaning`` (sensor fusion, water-label masking, cloud policy), ``stats`` (band statistics, class
counts), ``writer`` (chip GeoTIFFs), ``manifest`` (the schema), ``arcgis`` (ArcGIS's files) and
``folder`` (:func:`~core.chips.folder.load_chip_folder`, reads either kind of folder).
"""

from ..lazy import lazy_exports

#: the stage's entry point and options, imported on first use (:mod:`core.lazy`)
_EXPORTS = {
    "export_training_tiles": ".export",
    "ExportOptions": ".options",
    "CleaningOptions": ".options",
    "load_chip_folder": ".folder",
    "Manifest": ".manifest",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
