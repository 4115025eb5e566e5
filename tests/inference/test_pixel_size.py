"""core.inference.pixel_size: the model's pixel grid over a raster's extent (RESAMPLE)."""

from __future__ import annotations

import numpy as np
import pytest

from deeplandcover.core.inference.pixel_size import model_grid


def test_model_grid():
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from deeplandcover.core.modelcard import ModelCard
    from deeplandcover.core.raster.grid import RasterGrid

    utm = RasterGrid(CRS.from_epsg(32633), from_origin(500000, 5800000, 20, 20), 50, 30)

    def card_with(pixel_size):
        return ModelCard(architecture="unet", bands=["b"], mean=[0.0], std=[1.0], classes=[], pixel_size=pixel_size)

    card = card_with([10.0, 10.0])
    g = model_grid(card, utm)
    assert (g.width, g.height, g.pixel_size, g.bounds) == (100, 60, (10.0, 10.0), utm.bounds)
    assert model_grid(card, RasterGrid(utm.crs, from_origin(500000, 5800000, 10.05, 10.05), 50, 30)) is None
    assert model_grid(card_with([]), utm) is None  # no pixel size recorded
    geo = RasterGrid(CRS.from_epsg(4326), from_origin(13.0, 52.0, 0.001, 0.001), 10, 10)
    gx, gy = model_grid(card, geo).pixel_size
    assert gx == pytest.approx(10 / (111_320 * np.cos(np.deg2rad(51.995)))) and gy == pytest.approx(10 / 111_320)
