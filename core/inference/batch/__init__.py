"""Classify Pixels (Batch): the engine over many rasters or blocks of a mosaic, on Dask.

The only Dask user in core."""
