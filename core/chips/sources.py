"""The inputs of Export Training Tiles, checked before anything is written.

The image rasters (one raster, a time series of one grid, or a change pair), the rasters of other
sensors stacked onto a single image, the band selection, the tiling and the AOI / hold-out polygons.
Every check raises a :class:`core.errors.InputError` (or a subclass) naming the parameter to change.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import rasterio
from rasterio.enums import Resampling

from ..errors import GridMismatchError, InputError, NoOverlapError
from ..feedback import Feedback
from ..preprocessing.timeseries import parse_date
from ..raster.grid import RasterGrid, aligned, band_names, require_same_grid


@dataclass
class SensorSource:
    """A raster of another sensor stacked after the main bands (early fusion).

    Early fusion as in DeepForest-1: Cherif, E., Hell, M. & Brandmeier, M. (2022), "DeepForest: Novel
    Deep Learning Models for Land Use and Land Cover Classification Using Multi-Temporal and -Modal
    Sentinel Data of the Amazon Basin", Remote Sensing 14(19), 5000, https://doi.org/10.3390/rs14195000.

    Attributes:
        name: sensor name = file stem (``"S1"``), the prefix of its band names.
        path: the raster (same grid as the main input).
        bands: chip band names, prefixed (``"S1_VV"``); ``band_index`` their 1-based raster bands.
        nodata: the raster's nodata value or None.
    """

    name: str
    path: Path
    bands: list[str]
    band_index: list[int]
    nodata: float | None


@dataclass
class ImageSources:
    """The rasters chips are cut from, checked to share one grid.

    Attributes:
        images: the first-date raster, or the T rasters of a series (oldest first).
        images2: the second-date raster of a change pair, or None.
        grid: the common grid.
        band_index: 1-based bands read from every image (the BANDS selection).
        bands, bands2: chip band names of ``images`` and ``images2``; the bands of fused sensors are
            appended to ``bands`` (:func:`core.chips.cleaning.make_preprocessing`).
        dtype, dtype2: data types of ``images`` and ``images2``.
        nodata, nodata2: nodata values of ``images`` and ``images2`` (None = none).
        dates: ISO dates of a series (or file stems where no date was found), else empty.
        resampling2: how ``images2`` is resampled onto ``grid`` when it lies on another pixel grid
            (recorded in the manifest), else None.
    """

    images: list[Path]
    images2: Path | None
    grid: RasterGrid
    band_index: list[int]
    bands: list[str]
    bands2: list[str]
    dtype: str
    dtype2: str | None
    nodata: float | None
    nodata2: float | None
    dates: list[str] = field(default_factory=list)
    resampling2: str | None = None

    @property
    def kind(self) -> str:
        """``single``, ``pair`` or ``sequence``."""
        return "pair" if self.images2 else ("sequence" if len(self.images) > 1 else "single")


def parse_bands(bands: str | Sequence[int] | None) -> list[int] | None:
    """``"2,3,4,8"`` or ``[2, 3, 4, 8]`` -> 1-based band list; None/empty -> None (all bands).

    Raises:
        InputError: an entry is not a positive integer.
    """
    if bands is None or (isinstance(bands, str) and not bands.strip()):
        return None
    items = bands.replace(";", ",").split(",") if isinstance(bands, str) else list(bands)
    try:
        out = [int(str(b).strip()) for b in items if str(b).strip()]
    except ValueError:
        raise InputError(
            f"BANDS must be 1-based band numbers separated by commas, e.g. 2,3,4,8; got {bands!r}."
        ) from None
    if not out or min(out) < 1:
        raise InputError(f"Band numbers start at 1; got {bands!r}.")
    return out


def _check_files(paths: list[Path], images2: Path | None, dates: Sequence[str] | None) -> None:
    if not paths:
        raise InputError("Give at least one input raster (INPUT).")
    for p in [*paths, *([images2] if images2 else [])]:
        if not p.is_file():
            raise InputError(f"Input raster {p} does not exist.")
    if images2 and len(paths) > 1:
        raise InputError(
            "A second date (ADDITIONAL_INPUT) works with one INPUT raster, not a time series; "
            "give either several INPUT rasters or one raster plus ADDITIONAL_INPUT."
        )
    if dates is not None and len(dates) != len(paths):
        raise InputError(f"{len(dates)} dates were given for {len(paths)} rasters; give one date per raster.")


def _order_series(paths: list[Path], dates: Sequence[str] | None, feedback: Feedback) -> tuple[list[Path], list[str]]:
    """The rasters of a series sorted by date (given, or parsed from the file names) and their dates."""
    found = list(dates) if dates is not None else [parse_date(p.name) for p in paths]
    if not all(found):
        feedback.warning(
            "Could not read a date (YYYY-MM-DD) from every file name; the rasters are used in "
            "the given order and named by file."
        )
        return paths, [f or p.stem for f, p in zip(found, paths)]
    order = sorted(range(len(paths)), key=lambda i: found[i])
    if order != list(range(len(paths))):
        feedback.info("Time-series rasters were sorted by date (oldest first).")
    return [paths[i] for i in order], [found[i] for i in order]


def _check_bands(paths: list[Path], bands: Sequence[int] | None) -> tuple[list[int], list[str], str, float | None]:
    """1-based band indices, their names, the data type and nodata of the first raster (all dates checked)."""
    with rasterio.open(paths[0]) as ds:
        count, names, dtype, nodata = ds.count, band_names(ds), ds.dtypes[0], ds.nodata
        if len(set(ds.dtypes)) > 1:
            raise InputError(f"{paths[0].name} mixes band data types {set(ds.dtypes)}; convert it to one type.")
    for p in paths[1:]:
        with rasterio.open(p) as ds:
            if ds.count != count:
                raise InputError(
                    f"{p.name} has {ds.count} bands but {paths[0].name} has {count}; "
                    "every date of a series needs the same bands."
                )
    idx = list(bands) if bands else list(range(1, count + 1))
    if max(idx) > count:
        raise InputError(f"Band {max(idx)} was requested but {paths[0].name} has {count} bands (BANDS is 1-based).")
    return idx, [names[i - 1] for i in idx], dtype, nodata


def _second_date(
    images2: Path, grid: RasterGrid, first: Path, idx: list[int], feedback: Feedback
) -> tuple[list[str], str, float | None, str | None]:
    """Band names, data type, nodata and resampling note of the second-date raster, checked against the first.

    A second date on another pixel grid that overlaps the first is resampled onto the first date's grid
    (bilinear) as chips are read (:func:`core.raster.grid.aligned`); the returned note says so and goes
    into the manifest. Without any overlap, :func:`core.raster.grid.aligned` raises ``NoOverlapError``.
    """
    g2 = RasterGrid.from_path(images2)
    note = None
    if not grid.same_as(g2):
        with aligned(images2, grid, Resampling.bilinear):  # raises NoOverlapError / CRSMismatchError
            pass
        note = f"bilinear onto the grid of {first.name} ({grid.describe_difference(g2)})"
        feedback.warning(
            f"The second-date raster {images2.name} is not on the pixel grid of {first.name} "
            f"({grid.describe_difference(g2)}): it is resampled onto that grid (bilinear) as chips are cut."
        )
    with rasterio.open(images2) as ds:
        if max(idx) > ds.count:
            raise InputError(f"Band {max(idx)} was requested but {images2.name} has {ds.count} bands.")
        return [band_names(ds)[i - 1] for i in idx], ds.dtypes[0], ds.nodata, note


def open_sources(
    images: Sequence[str | os.PathLike],
    images2: str | os.PathLike | None,
    bands: Sequence[int] | None,
    dates: Sequence[str] | None,
    feedback: Feedback,
) -> ImageSources:
    """Check the input rasters and describe them.

    Args:
        images: one raster, or the rasters of a time series (any order; sorted by date).
        images2: the second date of a change pair, or None.
        bands: 1-based bands to read from every raster; None = all.
        dates: ISO dates of the series rasters, one per raster; None = parsed from the file names.
        feedback: receives the note about sorting and the warning about missing dates.

    Raises:
        InputError: no raster, missing file, band out of range, dates/rasters count mismatch,
            a second date combined with a time series.
        GridMismatchError: series rasters on another grid (names what differs).
        NoOverlapError: the second date does not overlap the first (a second date on another grid that
            overlaps it is resampled onto the first's grid).
    """
    paths = [Path(p) for p in images]
    second = Path(images2) if images2 else None
    _check_files(paths, second, dates)
    if len(paths) > 1:
        paths, found = _order_series(paths, dates, feedback)
        grid = require_same_grid(paths, "time-series rasters")
    else:
        found, grid = [], RasterGrid.from_path(paths[0])
    idx, names, dtype, nodata = _check_bands(paths, bands)
    bands2, dtype2, nodata2, note = (
        _second_date(second, grid, paths[0], idx, feedback) if second else ([], None, None, None)
    )
    return ImageSources(paths, second, grid, idx, names, bands2, dtype, dtype2, nodata, nodata2, found, note)


def open_sensors(paths: Sequence[str | os.PathLike], src: ImageSources) -> list[SensorSource]:
    """Describe additional sensor rasters (all their bands), checked to lie on the main grid.

    Raises:
        InputError: missing file, used with a series or a pair, two sensors with one name.
        GridMismatchError: a raster on another grid.
    """
    if src.kind != "single":
        raise InputError(
            "ADDITIONAL_SENSORS stacks other sensors onto ONE input raster; it cannot be combined "
            "with a time series or a second date."
        )
    out: list[SensorSource] = []
    names = {Path(src.images[0]).stem}
    for p in map(Path, paths):
        if not p.is_file():
            raise InputError(f"Sensor raster {p} does not exist.")
        g = RasterGrid.from_path(p)
        if not src.grid.same_as(g):
            raise GridMismatchError(
                f"The sensor raster {p.name} is not on the grid of {src.images[0].name}: "
                f"{src.grid.describe_difference(g)}. Resample it onto the input raster's grid first (Raster > "
                "Projections > Warp with the input's extent, resolution and CRS)."
            )
        if p.stem in names:
            raise InputError(
                f"Two input rasters are named {p.stem}; sensor band names are prefixed with the file "
                "name, so give each sensor raster its own name (e.g. S1.tif)."
            )
        names.add(p.stem)
        with rasterio.open(p) as ds:
            out.append(
                SensorSource(
                    p.stem, p, [f"{p.stem}_{b}" for b in band_names(ds)], list(range(1, ds.count + 1)), ds.nodata
                )
            )
    return out


def check_tiling(grid: RasterGrid, tile_size: int, stride: int) -> None:
    """Raise unless ``tile_size`` and ``stride`` (pixels) are positive and a chip fits in the raster.

    Raises:
        InputError: naming TILE_SIZE or STRIDE and a value that works.
    """
    if tile_size <= 0:
        raise InputError(f"TILE_SIZE must be a positive number of pixels, got {tile_size}.")
    if stride <= 0:
        raise InputError(f"STRIDE must be a positive number of pixels, got {stride}; use e.g. half the tile size.")
    if tile_size > min(grid.width, grid.height):
        raise InputError(
            f"TILE_SIZE {tile_size} px is larger than the raster ({grid.width} x {grid.height} px); "
            f"use TILE_SIZE <= {min(grid.width, grid.height)}."
        )


def read_polygons(path: str | os.PathLike, grid: RasterGrid, what: str):
    """Union of the polygons of a vector file in the grid CRS (a prepared shapely geometry).

    Args:
        path: the vector file (AOI or hold-out area).
        grid: the image grid; the polygons are reprojected to its CRS.
        what: the layer's role in messages (``"AOI"``, ``"hold-out"``).

    Raises:
        InputError: unreadable file, no polygon, no CRS.
        NoOverlapError: the polygons do not overlap the raster.
    """
    import geopandas as gpd
    import shapely
    from shapely.geometry import box

    try:
        gdf = gpd.read_file(path)
    except Exception as e:
        raise InputError(f"Cannot read the {what} layer {Path(path).name} ({e}).") from e
    gdf = gdf[gdf.geometry.notna() & gdf.geom_type.isin(["Polygon", "MultiPolygon"])]
    if gdf.empty:
        raise InputError(f"The {what} layer {Path(path).name} has no polygon; give a polygon layer.")
    if gdf.crs is None:
        raise InputError(f"The {what} layer {Path(path).name} has no CRS; assign one first.")
    if grid.crs is not None and gdf.crs != grid.crs:
        gdf = gdf.to_crs(grid.crs)
    geom = shapely.union_all(gdf.geometry.values)
    if not geom.intersects(box(*grid.bounds)):
        raise NoOverlapError(f"The {what} layer {Path(path).name} does not overlap the input raster.")
    shapely.prepare(geom)
    return geom
