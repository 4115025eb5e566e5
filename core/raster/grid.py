"""Raster grids: CRS, geotransform and size of a raster, grid checks, alignment, pixel areas.

All windows are :class:`rasterio.windows.Window` in pixels of the raster they refer to; coordinates are in
CRS units.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.errors
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from ..errors import CRSMismatchError, GridMismatchError, InputError, NoOverlapError


def window_transform(window: Window, transform: Affine) -> Affine:
    """Geotransform of ``window`` (its own upper-left corner) on a grid of geotransform ``transform``.

    The same as ``rasterio.windows.transform``, written out: that multiplies affine matrices with ``*``, which
    affine >= 2.4 deprecates with a ``PendingDeprecationWarning`` (QGIS shows it in its log).

    Args:
        window: pixel window (column/row offsets in pixels, fractional allowed).
        transform: the grid's geotransform (CRS units per pixel).
    """
    col, row = float(window.col_off or 0.0), float(window.row_off or 0.0)
    a, b, c, d, e, f = transform[:6]
    return Affine(a, b, c + a * col + b * row, d, e, f + d * col + e * row)


@dataclass(frozen=True)
class RasterGrid:
    """A pixel grid: CRS, geotransform and size.

    Attributes:
        crs: coordinate reference system (rasterio CRS; may be None for ungeoreferenced rasters).
        transform: affine geotransform, pixel (col, row) -> CRS coordinates of the pixel corner.
        width: number of columns (pixels).
        height: number of rows (pixels).
    """

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @classmethod
    def from_dataset(cls, ds: rasterio.io.DatasetReader) -> RasterGrid:
        """Grid of an open rasterio dataset."""
        return cls(ds.crs, ds.transform, ds.width, ds.height)

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> RasterGrid:
        """Grid of the raster at ``path``.

        Raises:
            InputError: GDAL cannot open ``path`` as a raster (missing, unreadable or not a raster format).
        """
        try:
            with rasterio.open(path) as ds:
                return cls.from_dataset(ds)
        except rasterio.errors.RasterioIOError as e:
            raise InputError(
                f"Cannot open {path} as a raster ({e}). Check that the file exists, is readable and is a raster "
                "format GDAL reads (GeoTIFF, VRT, JP2...)."
            ) from e

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        return rasterio.transform.array_bounds(self.height, self.width, self.transform)

    @property
    def pixel_size(self) -> tuple[float, float]:
        """(x, y) pixel size in CRS units, both positive."""
        return abs(self.transform.a), abs(self.transform.e)

    def window_transform(self, window: Window) -> Affine:
        """Geotransform of ``window`` (its own upper-left corner); see :func:`window_transform`."""
        return window_transform(window, self.transform)

    def same_as(self, other: RasterGrid, rel_tol: float = 1e-6) -> bool:
        """True when both grids have the same CRS, size and (to ``rel_tol`` of a pixel) geotransform."""
        if (self.width, self.height) != (other.width, other.height):
            return False
        if (self.crs is None) != (other.crs is None) or (self.crs and self.crs != other.crs):
            return False
        px = max(self.pixel_size)
        return all(abs(a - b) <= rel_tol * px * 1e3 for a, b in zip(self.transform[:6], other.transform[:6]))

    def describe_difference(self, other: RasterGrid) -> str:
        """One sentence naming what differs between two grids (for error messages)."""
        diffs = []
        if self.crs != other.crs:
            diffs.append(f"CRS {self.crs} vs {other.crs}")
        if (self.width, self.height) != (other.width, other.height):
            diffs.append(f"size {self.width}x{self.height} vs {other.width}x{other.height} px")
        if self.pixel_size != other.pixel_size:
            diffs.append(f"pixel size {self.pixel_size} vs {other.pixel_size}")
        if (self.transform.c, self.transform.f) != (other.transform.c, other.transform.f):
            diffs.append(
                f"origin ({self.transform.c}, {self.transform.f}) vs ({other.transform.c}, {other.transform.f})"
            )
        return ", ".join(diffs) or "no difference"


def require_same_grid(paths: Sequence[str | os.PathLike], what: str = "rasters") -> RasterGrid:
    """Check that all rasters share one grid and return it.

    Raises:
        GridMismatchError: naming the first raster that differs and how (CRS, size, pixel, origin).
    """
    grids = [RasterGrid.from_path(p) for p in paths]
    for p, g in zip(paths[1:], grids[1:]):
        if not grids[0].same_as(g):
            raise GridMismatchError(
                f"The {what} must share one pixel grid, but {Path(p).name} differs from "
                f"{Path(paths[0]).name}: {grids[0].describe_difference(g)}. Resample them onto one grid "
                "first (Raster > Projections > Warp, or gdalwarp -tr/-te/-t_srs with the first raster's values)."
            )
    return grids[0]


def window_from_bounds_clipped(grid: RasterGrid, bounds: tuple[float, float, float, float]) -> Window:
    """Integer pixel window of ``bounds`` (CRS units of ``grid``) clipped to the raster.

    Raises:
        NoOverlapError: the bounds do not overlap the raster.
    """
    win = rasterio.windows.from_bounds(*bounds, transform=grid.transform)
    win = win.round_offsets(op="floor").round_lengths(op="ceil")
    try:
        win = win.intersection(Window(0, 0, grid.width, grid.height))
    except rasterio.errors.WindowError:
        win = None
    if win is None or win.width <= 0 or win.height <= 0:
        raise NoOverlapError(
            f"The extent {tuple(round(b, 3) for b in bounds)} does not overlap the raster "
            f"{tuple(round(b, 3) for b in grid.bounds)} (CRS {grid.crs}). Choose an extent inside the raster."
        )
    return Window(int(win.col_off), int(win.row_off), int(win.width), int(win.height))


@contextlib.contextmanager
def aligned(path: str | os.PathLike, grid: RasterGrid, resampling: Resampling = Resampling.nearest) -> Iterator:
    """Open ``path`` so that reads come on ``grid`` (reprojected/resampled on the fly, streamed).

    Yields the dataset itself when it is already on ``grid``, else a :class:`WarpedVRT`; windows
    read from it are windows of ``grid``. Use nearest resampling for class rasters.

    Raises:
        CRSMismatchError: either raster has no CRS while the other has one.
        NoOverlapError: the raster does not overlap ``grid``.
    """
    with rasterio.open(path) as src:
        g = RasterGrid.from_dataset(src)
        if g.same_as(grid):
            yield src
            return
        if (src.crs is None) != (grid.crs is None):
            raise CRSMismatchError(
                f"{Path(path).name} has CRS {src.crs} and the reference grid has {grid.crs}; "
                "assign the missing CRS (Raster > Projections > Assign Projection) first."
            )
        b = rasterio.warp.transform_bounds(src.crs, grid.crs, *src.bounds) if src.crs != grid.crs else src.bounds
        gb = grid.bounds
        if b[0] >= gb[2] or b[2] <= gb[0] or b[1] >= gb[3] or b[3] <= gb[1]:
            raise NoOverlapError(
                f"{Path(path).name} (bounds {tuple(round(x, 3) for x in b)} in {grid.crs}) does not overlap "
                f"the reference raster (bounds {tuple(round(x, 3) for x in gb)})."
            )
        with WarpedVRT(
            src,
            crs=grid.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            resampling=resampling,
            nodata=src.nodata,
        ) as vrt:
            yield vrt


def band_names(ds: rasterio.io.DatasetReader) -> list[str]:
    """Band descriptions of ``ds``, ``"B1"``, ``"B2"``... where a band has none."""
    return [d if d else f"B{i + 1}" for i, d in enumerate(ds.descriptions)]


def undescribed(names: Sequence[str]) -> bool:
    """True when ``names`` are :func:`band_names`' stand-ins ``B1``...``Bn`` (any case): they say nothing about
    the bands (band 11 of a 13-band Sentinel-2 raster is B10 in product order)."""
    return [str(b).strip().lower() for b in names] == [f"b{i + 1}" for i in range(len(names))]


#: Metres per degree of latitude (and of longitude on the equator): 1 degree = 111.32 km, the usual round
#: value of the WGS 84 equator (2 pi x 6 378 137 m / 360 = 111 319.5 m). The one earth model of the plugin.
METRES_PER_DEGREE = 111_320.0


def metres_per_unit(grid: RasterGrid) -> tuple[float, float] | None:
    """Metres per CRS unit along x and y, or None without a CRS.

    A projected CRS gives its linear unit (1 for metres, 0.3048 for feet...) on both axes. A geographic CRS
    gives :data:`METRES_PER_DEGREE` along y and that times the cosine of the grid's centre latitude along x
    (a sphere, evaluated at the centre latitude; the WGS 84 ellipsoid's degree lengths differ by less than 1 %).
    """
    if grid.crs is None:
        return None
    if grid.crs.is_projected:
        f = grid.crs.linear_units_factor[1] if grid.crs.linear_units_factor else 1.0
        return f, f
    lat = (grid.bounds[1] + grid.bounds[3]) / 2.0
    return METRES_PER_DEGREE * float(np.cos(np.deg2rad(lat))), METRES_PER_DEGREE


def pixel_area_m2(grid: RasterGrid) -> float | None:
    """Area of one pixel in square metres (pixel size x :func:`metres_per_unit`), or None without a CRS.

    For a geographic CRS the area is that of a pixel at the grid's centre latitude.
    """
    per_unit = metres_per_unit(grid)
    if per_unit is None:
        return None
    px, py = grid.pixel_size
    return float(px * per_unit[0] * py * per_unit[1])


def crs_unit_name(crs: CRS | None) -> str:
    """Name of the unit of a CRS's coordinates, as chip manifests and model cards record pixel sizes.

    Returns:
        ``"pixel"`` without a CRS, ``"degree"`` for a geographic CRS, ``"metre"`` for metres
        (whatever the spelling), else the CRS's own linear unit name (e.g. ``"US survey foot"``).
    """
    if crs is None:
        return "pixel"
    if crs.is_geographic:
        return "degree"
    units = crs.linear_units or "metre"
    return "metre" if units.lower() in ("metre", "meter", "m") else units
