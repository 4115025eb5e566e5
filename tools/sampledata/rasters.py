"""GeoTIFF writing and Sentinel-2 band stacking shared by the converters of the sample-data sets.

The files match the reference layout byte for byte where the GDAL build is the same: the project's
GeoTIFF profile (:func:`deeplandcover.core.raster.io.geotiff_profile`: DEFLATE, 256-pixel tiles when
the raster is at least one tile big) with DEFLATE level 9, pixel interleaving for several bands,
predictor 2 for 16-bit integers, 3 for floats, none for 8-bit rasters; tags written in sorted order,
then band descriptions, then the colour table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject

from deeplandcover.core.raster.grid import RasterGrid
from deeplandcover.core.raster.io import geotiff_profile

#: Sentinel-2 MSI band order of every 13-band file of the layout.
S2_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")

#: Tag of the 13-band stacks that says how the 20 m and 60 m bands were put on the 10 m grid.
RESAMPLING_TAG = "20 m and 60 m bands resampled bilinearly onto the B02 10 m grid"


def write_geotiff(
    path: Path,
    data: np.ndarray,
    grid: RasterGrid,
    *,
    tags: Mapping[str, str] | None = None,
    descriptions: Sequence[str] | None = None,
    nodata: float | None = None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
) -> Path:
    """Write ``data`` as a DEFLATE GeoTIFF on ``grid`` (see the module docstring for the options).

    Args:
        path: file to write (its folder must exist).
        data: ``(bands, rows, cols)`` or ``(rows, cols)`` array, dtype uint8, uint16 or float32.
        grid: CRS and geotransform; its size must equal the array's.
        tags: dataset metadata (written in sorted key order).
        descriptions: one per band.
        nodata: nodata value, or None.
        colormap: ``{value: (r, g, b, a)}`` colour table of a single-band uint8 raster.

    Returns:
        ``path``.

    Raises:
        ValueError: the array does not fit the grid or the descriptions do not fit the bands.
    """
    arr = data[np.newaxis] if data.ndim == 2 else data
    if arr.shape[1:] != (grid.height, grid.width):
        raise ValueError(f"{path.name}: array {arr.shape[1:]} does not fit the grid ({grid.height}, {grid.width}).")
    if descriptions is not None and len(descriptions) != arr.shape[0]:
        raise ValueError(f"{path.name}: {len(descriptions)} band descriptions for {arr.shape[0]} bands.")
    dtype = np.dtype(arr.dtype)
    prof = geotiff_profile(grid, arr.shape[0], dtype.name, nodata)
    prof.pop("predictor", None)
    if dtype.kind == "f":
        prof["predictor"] = 3
    elif dtype.itemsize > 1:
        prof["predictor"] = 2
    prof["zlevel"] = 9
    if arr.shape[0] > 1:
        prof["interleave"] = "pixel"
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(arr)
        if tags:
            dst.update_tags(**dict(sorted(tags.items())))
        for i, d in enumerate(descriptions or (), 1):
            dst.set_band_description(i, d)
        if colormap:
            dst.write_colormap(1, dict(colormap))
    return path


def stack_s2_bands(band_files: Mapping[str, Path]) -> tuple[np.ndarray, RasterGrid]:
    """The 13 Sentinel-2 bands on the grid of B02: 10 m bands copied, 20 m and 60 m bands bilinear.

    Every band must be in one CRS; those of another size are resampled onto the B02 grid with
    rasterio ``reproject`` (GDAL warp, bilinear), values otherwise unchanged.

    Args:
        band_files: ``{band name: single-band file}`` for every name of :data:`S2_BANDS`.

    Returns:
        ``((13, rows, cols) uint16 array in S2_BANDS order, B02 grid)``.

    Raises:
        ValueError: a band is missing or has another CRS than B02.
    """
    missing = [b for b in S2_BANDS if b not in band_files]
    if missing:
        raise ValueError(f"Sentinel-2 bands {', '.join(missing)} are missing; need all of {', '.join(S2_BANDS)}.")
    grid = RasterGrid.from_path(band_files["B02"])
    out = []
    for b in S2_BANDS:
        with rasterio.open(band_files[b]) as src:
            if src.crs != grid.crs:
                raise ValueError(f"{band_files[b].name} is in {src.crs}, B02 in {grid.crs}: one CRS needed.")
            band = src.read(1)
            if src.shape != (grid.height, grid.width) or src.transform != grid.transform:
                band = _bilinear(band, src.transform, src.crs, grid)
        out.append(band)
    return np.stack(out), grid


def _bilinear(band: np.ndarray, transform: Affine, crs: CRS, grid: RasterGrid) -> np.ndarray:
    """``band`` resampled bilinearly onto ``grid`` (same dtype; zero where the band does not reach)."""
    dst = np.zeros((grid.height, grid.width), band.dtype)
    reproject(
        band,
        dst,
        src_transform=transform,
        src_crs=crs,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        resampling=Resampling.bilinear,
    )
    return dst


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """A CSV table with the csv module's defaults (comma, CRLF line ends, minimal quoting)."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path
