"""Export Training Tiles and the chip-folder format (ours and ArcGIS's Classified Tiles).

``options`` (ExportOptions, CleaningOptions), ``export`` (:func:`~core.chips.export.export_training_tiles`,
the per-window pipeline), ``sources`` (input checks), ``labels`` and ``morphology`` (label rasters),
``cleaning`` (sensor fusion, water-label masking, cloud policy), ``stats`` (band statistics, class
counts), ``writer`` (chip GeoTIFFs), ``manifest`` (the schema), ``arcgis`` (ArcGIS's files) and
``folder`` (:func:`~core.chips.folder.load_chip_folder`, reads either kind of folder).
"""
