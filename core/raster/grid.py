"""Raster grids, tile windows, nodata masks, normalisation and atomic GeoTIFF writing.

The one place where Export Training Tiles, Train Model, Classify Pixels and Detect Change get their
tiling and normalisation, so that a model sees at inference exactly what it saw in training.
All windows are :class:`rasterio.windows.Window` in pixels of the raster they refer to.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from ..errors import CRSMismatchError, GridMismatchError, InputError, NoOverlapError

#: Label value for "no label": excluded from losses and metrics (ArcGIS uses the same convention).
IGNORE_INDEX = 255


# --------------------------------------------------------------------------------------- grids
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
        """Grid of the raster at ``path``."""
        with rasterio.open(path) as ds:
            return cls.from_dataset(ds)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        return rasterio.transform.array_bounds(self.height, self.width, self.transform)[::1]

    @property
    def pixel_size(self) -> tuple[float, float]:
        """(x, y) pixel size in CRS units, both positive."""
        return abs(self.transform.a), abs(self.transform.e)

    def window_transform(self, window: Window) -> Affine:
        """Geotransform of ``window`` (its own upper-left corner)."""
        return rasterio.windows.transform(window, self.transform)

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
            diffs.append(f"origin ({self.transform.c}, {self.transform.f}) vs ({other.transform.c}, {other.transform.f})")
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


def tile_offsets(length: int, tile_size: int, stride: int, cover_edges: bool = True) -> list[int]:
    """Start offsets (pixels) of tiles along one axis.

    Tiles start at 0 and step by ``stride``. With ``cover_edges`` a last tile is snapped to
    ``length - tile_size`` so every pixel is covered (inference); without it only tiles that fit
    are returned, ``(length - tile_size) // stride + 1`` of them (chip export, as ArcGIS does).
    A tile larger than the axis gives one tile at 0 (the caller pads).

    Raises:
        InputError: ``tile_size`` or ``stride`` <= 0.
    """
    if tile_size <= 0:
        raise InputError(f"Tile size must be a positive number of pixels, got {tile_size}.")
    if stride <= 0:
        raise InputError(f"Stride must be a positive number of pixels, got {stride}; use e.g. half the tile size.")
    if length <= tile_size:
        return [0]
    offs = list(range(0, length - tile_size + 1, stride))
    if cover_edges and offs[-1] + tile_size < length:
        offs.append(length - tile_size)
    return offs


def tile_windows(
    width: int, height: int, tile_size: int, stride: int, cover_edges: bool = True
) -> list[Window]:
    """Row-major grid of square tile windows over a ``width`` x ``height`` raster.

    Args:
        width, height: raster size in pixels.
        tile_size: tile edge in pixels.
        stride: step between tile origins in pixels (``tile_size - overlap``).
        cover_edges: see :func:`tile_offsets`.

    Returns:
        Windows of ``min(tile_size, width)`` x ``min(tile_size, height)`` pixels.
    """
    tw, th = min(tile_size, width), min(tile_size, height)
    return [
        Window(c, r, tw, th)
        for r in tile_offsets(height, tile_size, stride, cover_edges)
        for c in tile_offsets(width, tile_size, stride, cover_edges)
    ]


def block_windows(width: int, height: int, size: int) -> list[Window]:
    """Disjoint windows covering a raster exactly once, for counting (streamed statistics).

    Uses :func:`tile_windows` with stride = ``size`` and trims the edge tiles that it
    snaps back inside the raster (they overlap their neighbour), so every pixel is counted once.

    Returns:
        Row-major windows of at most ``size`` x ``size`` pixels.
    """
    out = []
    for w in tile_windows(width, height, size, size):
        c0 = -(-int(w.col_off) // size) * size if int(w.col_off) % size else int(w.col_off)
        r0 = -(-int(w.row_off) // size) * size if int(w.row_off) % size else int(w.row_off)
        out.append(Window(c0, r0, int(w.col_off + w.width) - c0, int(w.row_off + w.height) - r0))
    return out


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


# ------------------------------------------------------------------------------- nodata, norm
def valid_mask(data: np.ndarray, nodata: float | None) -> np.ndarray:
    """Pixels that hold data: not NaN in any band, and not equal to ``nodata`` in every band.

    A pixel is nodata when *all* its bands equal the nodata value (GDAL's per-dataset nodata on
    multiband imagery: a single dark band is a valid measurement), or when any band is NaN.

    Args:
        data: ``(C, H, W)`` array of any dtype.
        nodata: the raster's nodata value, or None.

    Returns:
        ``(H, W)`` bool, True where the pixel holds data.
    """
    mask = np.ones(data.shape[-2:], dtype=bool)
    if np.issubdtype(data.dtype, np.floating):
        mask &= ~np.isnan(data).any(axis=0)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        mask &= ~(data == nodata).all(axis=0)
    return mask


def normalize(data: np.ndarray, mean: Sequence[float], std: Sequence[float], valid: np.ndarray | None = None) -> np.ndarray:
    """Per-band standardisation ``(x - mean) / std`` with invalid pixels set to 0 (the band mean).

    Args:
        data: ``(..., C, H, W)`` array of any numeric dtype.
        mean, std: C per-band statistics in the raster's units (from the manifest / model card).
        valid: optional ``(..., H, W)`` bool mask; pixels where it is False become 0.

    Returns:
        ``(..., C, H, W)`` float32.

    Raises:
        InputError: the number of statistics differs from the number of bands.
    """
    c = data.shape[-3]
    if len(mean) != c or len(std) != c:
        raise InputError(f"Normalisation has {len(mean)} means / {len(std)} stds for {c} bands.")
    m = np.asarray(mean, dtype=np.float32).reshape(c, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(c, 1, 1)
    s = np.where(s > 0, s, 1.0).astype(np.float32)
    out = data.astype(np.float32)  # one copy, then in place: this runs once per tile and chip
    out -= m
    out /= s
    if valid is not None:
        np.copyto(out, np.float32(0), where=~np.expand_dims(valid, -3))
    if not np.issubdtype(data.dtype, np.integer):  # integers cannot hold NaN or inf
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out


# --------------------------------------------------------------------------- alignment, I/O
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
            src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
            resampling=resampling, nodata=src.nodata,
        ) as vrt:
            yield vrt


def geotiff_profile(grid: RasterGrid, count: int, dtype: str, nodata: float | None = None, tile: int = 256) -> dict:
    """rasterio profile of a tiled, DEFLATE-compressed GeoTIFF on ``grid``.

    Tiles are only requested when the raster is at least one tile big (GDAL needs 16-multiple
    block sizes); BIGTIFF is used when needed.
    """
    prof = {
        "driver": "GTiff", "crs": grid.crs, "transform": grid.transform, "width": grid.width,
        "height": grid.height, "count": count, "dtype": dtype, "nodata": nodata,
        "compress": "deflate", "BIGTIFF": "IF_SAFER",
    }
    if grid.width >= tile and grid.height >= tile:
        prof.update(tiled=True, blockxsize=tile, blockysize=tile)
    if np.dtype(dtype).kind in "iu":
        prof["predictor"] = 2
    return prof


_SIDECARS = (".aux.xml", ".ovr", ".msk")


@contextlib.contextmanager
def atomic_output(final_path: str | os.PathLike) -> Iterator[Path]:
    """Write to a temporary file beside ``final_path``, rename it into place on success.

    On any exception (cancel included) the temporary file and its sidecars are deleted and
    ``final_path`` is left untouched, so nothing half-written ever looks complete.

    Yields:
        The temporary path to write to (same folder and suffix as ``final_path``).
    """
    final = Path(final_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.tmp-{uuid.uuid4().hex[:8]}{final.suffix}")
    try:
        yield tmp
        os.replace(tmp, final)
        for side in _SIDECARS:
            if Path(str(tmp) + side).exists():
                os.replace(str(tmp) + side, str(final) + side)
    finally:
        for p in [tmp, *(Path(str(tmp) + s) for s in _SIDECARS)]:
            if p.exists():
                p.unlink()


def band_names(ds: rasterio.io.DatasetReader) -> list[str]:
    """Band descriptions of ``ds``, ``"B1"``, ``"B2"``... where a band has none."""
    return [d if d else f"B{i + 1}" for i, d in enumerate(ds.descriptions)]


def pixel_area_m2(grid: RasterGrid) -> float | None:
    """Area of one pixel in square metres, or None when the CRS is geographic/unknown.

    For geographic CRSs the area is approximated at the grid centre (spherical earth, R=6371008.8 m).
    """
    px, py = grid.pixel_size
    if grid.crs is None:
        return None
    if grid.crs.is_projected:
        f = grid.crs.linear_units_factor[1] if grid.crs.linear_units_factor else 1.0
        return px * py * f * f
    lat = np.deg2rad((grid.bounds[1] + grid.bounds[3]) / 2)
    r = 6371008.8
    return float((np.deg2rad(px) * r * np.cos(lat)) * (np.deg2rad(py) * r))
