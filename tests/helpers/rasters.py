"""Small generated GeoTIFFs for the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str = "EPSG:32633",
    origin=(500000.0, 5800000.0),
    pixel: float = 10.0,
    nodata=None,
    descriptions=None,
    colormap=None,
) -> Path:
    """Write ``data`` ``(C, H, W)`` (or ``(H, W)``) as a GeoTIFF with a north-up geotransform."""
    import rasterio
    from rasterio.transform import from_origin

    if data.ndim == 2:
        data = data[None]
    c, h, w = data.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=c,
        dtype=data.dtype,
        crs=crs,
        transform=from_origin(origin[0], origin[1], pixel, pixel),
        nodata=nodata,
    ) as ds:
        ds.write(data)
        if descriptions:
            for i, d in enumerate(descriptions, 1):
                ds.set_band_description(i, d)
        if colormap:
            ds.write_colormap(1, colormap)
    return path
