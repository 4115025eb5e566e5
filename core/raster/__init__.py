"""Raster grids (CRS units, pixel areas), tile windows and GeoTIFF I/O."""
