"""Test helpers shared by the test packages (small generated rasters, ONNX models, chip folders, qgis_process)."""
