"""Tests of ``raster``."""
