"""Export Training Tiles: georeferenced image/label chips plus an ArcGIS-compatible chip folder.

The QGIS-free counterpart of ArcGIS "Export Training Data For Deep Learning" (metadata format
Classified Tiles). One pass over the chip grid of :func:`core.raster.tile_windows` (``cover_edges=False``,
so chip counts follow ArcGIS's ``(size - tile) // stride + 1`` per axis); each window is read,
labelled (:mod:`core.labels`), checked and written before the next one, so memory is bounded by a few
chips. The folder layout and ``manifest.json`` schema are those of :mod:`core.manifest`; ``map.txt``
and ``esri_accumulated_stats.json`` come from :mod:`core.arcgis`. ``manifest.json`` is written last.

Chip kinds:
    * single: ``images/ID.tif`` = the C selected bands of one raster.
    * pair: ``images/`` first date, ``images2/`` second date (change detection), same windows.
    * sequence: T rasters of one grid -> one ``T*C``-band chip, time-major (band ``t*C+c`` is band c of
      date t), dates oldest first in ``manifest.time_steps``.

Labels where the imagery has no data are set to IGNORE_INDEX (single: any nodata pixel; pair: nodata
in either date; sequence: nodata in every date), so the loss never learns from empty pixels.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling

from ..errors import InputError, NoOverlapError
from ..feedback import Feedback, check_canceled, ensure_feedback
from ..preprocessing.normalize import valid_mask
from ..raster.grid import IGNORE_INDEX, RasterGrid, aligned, band_names, require_same_grid
from ..raster.io import geotiff_profile
from ..raster.tiling import tile_windows
from . import arcgis
from .labels import PALETTE, LabelSource, hex_to_rgb, open_labels, read_class_table
from .manifest import BandStats, ChipRecord, ClassInfo, Manifest

SOFTWARE = "deeplandcover.core.chips.export"
_DATE_RE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


# ------------------------------------------------------------------------------ statistics
class BandAccumulator:
    """Streaming per-band min/max/mean/variance (Chan et al. 1979 pairwise update of count, mean, M2).

    ``M2`` is the sum of squared deviations from the mean, the same quantity ArcGIS stores in
    ``BandStatsState`` (std = sqrt(M2 / Num)).
    """

    def __init__(self, n_bands: int) -> None:
        self.n = np.zeros(n_bands, np.int64)
        self.mean = np.zeros(n_bands, np.float64)
        self.m2 = np.zeros(n_bands, np.float64)
        self.min = np.full(n_bands, np.inf)
        self.max = np.full(n_bands, -np.inf)

    def update(self, pixels: np.ndarray) -> None:
        """Add ``(C, N)`` valid pixel values (any numeric dtype)."""
        nb = pixels.shape[1]
        if nb == 0:
            return
        x = pixels.astype(np.float64)
        mb = x.sum(axis=1) / nb
        x -= mb[:, None]
        m2b = np.einsum("ij,ij->i", x, x)
        mn, mx = pixels.min(axis=1), pixels.max(axis=1)
        na = self.n.astype(np.float64)
        tot = na + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * nb / tot
        self.m2 = self.m2 + m2b + delta * delta * na * nb / tot
        self.n += nb
        self.min = np.minimum(self.min, mn)
        self.max = np.maximum(self.max, mx)

    def update_masked(self, data: np.ndarray, valid: np.ndarray) -> None:
        """Add the pixels of ``(C, H, W)`` ``data`` where ``(H, W)`` ``valid`` is True."""
        flat = data.reshape(data.shape[0], -1)
        self.update(flat if valid.all() else flat[:, valid.ravel()])

    def result(self, names: Sequence[str]) -> list[BandStats]:
        """One :class:`BandStats` per band (zeros for a band without valid pixels)."""
        out = []
        for i, name in enumerate(names):
            n = int(self.n[i])
            out.append(BandStats(
                name=name, min=float(self.min[i]) if n else 0.0, max=float(self.max[i]) if n else 0.0,
                mean=float(self.mean[i]), std=float(np.sqrt(self.m2[i] / n)) if n else 0.0, count=n,
            ))
        return out


# ------------------------------------------------------------------------------ inputs
@dataclass
class SensorSource:
    """A raster of another sensor stacked after the main bands (early fusion, seed 001).

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
    """The rasters chips are cut from, checked to share one grid."""

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
    sensors: list[SensorSource] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``single``, ``pair`` or ``sequence``."""
        return "pair" if self.images2 else ("sequence" if len(self.images) > 1 else "single")


def parse_date(name: str) -> str | None:
    """ISO date found in a file name (``2015-07-11`` or ``20150711``), or None."""
    for m in _DATE_RE.finditer(name):
        try:
            return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError:
            continue
    return None


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
        raise InputError(f"BANDS must be 1-based band numbers separated by commas, e.g. 2,3,4,8; got {bands!r}.") from None
    if not out or min(out) < 1:
        raise InputError(f"Band numbers start at 1; got {bands!r}.")
    return out


def open_sources(images: Sequence[str | os.PathLike], images2: str | os.PathLike | None,
                 bands: Sequence[int] | None, dates: Sequence[str] | None, feedback: Feedback) -> ImageSources:
    """Check the input rasters and describe them.

    Raises:
        InputError: no raster, missing file, band out of range, dates/rasters count mismatch,
            a second date combined with a time series.
        GridMismatchError: series rasters or the second date on another grid (names what differs).
    """
    paths = [Path(p) for p in images]
    if not paths:
        raise InputError("Give at least one input raster (INPUT).")
    for p in [*paths, *([Path(images2)] if images2 else [])]:
        if not p.is_file():
            raise InputError(f"Input raster {p} does not exist.")
    if images2 and len(paths) > 1:
        raise InputError("A second date (ADDITIONAL_INPUT) works with one INPUT raster, not a time series; "
                         "give either several INPUT rasters or one raster plus ADDITIONAL_INPUT.")
    if dates is not None and len(dates) != len(paths):
        raise InputError(f"{len(dates)} dates were given for {len(paths)} rasters; give one date per raster.")
    if len(paths) > 1:
        found = list(dates) if dates is not None else [parse_date(p.name) for p in paths]
        if all(found):
            order = sorted(range(len(paths)), key=lambda i: found[i])
            if order != list(range(len(paths))):
                feedback.info("Time-series rasters were sorted by date (oldest first).")
            paths, found = [paths[i] for i in order], [found[i] for i in order]
        else:
            feedback.warning("Could not read a date (YYYY-MM-DD) from every file name; the rasters are used in "
                             "the given order and named by file.")
            found = [f or p.stem for f, p in zip(found, paths)]
        grid = require_same_grid(paths, "time-series rasters")
    else:
        found = []
        grid = RasterGrid.from_path(paths[0])
    with rasterio.open(paths[0]) as ds:
        count, names, dtype, nodata = ds.count, band_names(ds), ds.dtypes[0], ds.nodata
        if len(set(ds.dtypes)) > 1:
            raise InputError(f"{paths[0].name} mixes band data types {set(ds.dtypes)}; convert it to one type.")
    for p in paths[1:]:
        with rasterio.open(p) as ds:
            if ds.count != count:
                raise InputError(f"{p.name} has {ds.count} bands but {paths[0].name} has {count}; "
                                 "every date of a series needs the same bands.")
    idx = list(bands) if bands else list(range(1, count + 1))
    if max(idx) > count:
        raise InputError(f"Band {max(idx)} was requested but {paths[0].name} has {count} bands (BANDS is 1-based).")
    bands2, dtype2, nodata2 = [], None, None
    if images2:
        g2 = RasterGrid.from_path(images2)
        if not grid.same_as(g2):
            from ..errors import GridMismatchError

            raise GridMismatchError(
                f"The second-date raster {Path(images2).name} is not on the grid of {paths[0].name}: "
                f"{grid.describe_difference(g2)}. Resample it onto the first raster's grid first "
                "(Raster > Projections > Warp with the first raster's extent, resolution and CRS)."
            )
        with rasterio.open(images2) as ds:
            if max(idx) > ds.count:
                raise InputError(f"Band {max(idx)} was requested but {Path(images2).name} has {ds.count} bands.")
            bands2, dtype2, nodata2 = [band_names(ds)[i - 1] for i in idx], ds.dtypes[0], ds.nodata
    return ImageSources(paths, Path(images2) if images2 else None, grid, idx, [names[i - 1] for i in idx],
                        bands2, dtype, dtype2, nodata, nodata2, found)


def _prepare_out_dir(out_dir: str | os.PathLike) -> tuple[Path, bool]:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"Output folder {out} is a file; choose a folder.")
    if out.is_dir() and any(out.iterdir()):
        raise InputError(f"Output folder {out} is not empty; choose an empty or new folder so that old chips "
                         "are not mixed with new ones.")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    return out, created


def _polygons(path: str | os.PathLike, grid: RasterGrid, what: str):
    """Union of the polygons of a vector file in the grid CRS (shapely geometry, prepared)."""
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


def default_block_size(grid: RasterGrid, tile_size: int) -> int:
    """Edge (pixels) of the spatial blocks that train/validation splits keep together.

    ``4 * tile_size`` (blocks much larger than a chip, so little leakage at block borders), but at
    most half the raster's shorter side, so a small raster still has several blocks to split.
    """
    return max(tile_size, min(4 * tile_size, min(grid.width, grid.height) // 2))


def _check_tiling(grid: RasterGrid, tile_size: int, stride: int) -> None:
    if tile_size <= 0:
        raise InputError(f"TILE_SIZE must be a positive number of pixels, got {tile_size}.")
    if stride <= 0:
        raise InputError(f"STRIDE must be a positive number of pixels, got {stride}; use e.g. half the tile size.")
    if tile_size > min(grid.width, grid.height):
        raise InputError(
            f"TILE_SIZE {tile_size} px is larger than the raster ({grid.width} x {grid.height} px); "
            f"use TILE_SIZE <= {min(grid.width, grid.height)}."
        )


# ------------------------------------------------------------------------------ writing
def _write_image(path: Path, data: np.ndarray, grid: RasterGrid, nodata, names: Sequence[str]) -> None:
    prof = geotiff_profile(grid, data.shape[0], str(data.dtype), nodata)
    if data.dtype.kind == "f":
        prof["predictor"] = 3
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(data)
        ds.descriptions = tuple(names)


def _write_label(path: Path, lab: np.ndarray, grid: RasterGrid, colormap: dict) -> None:
    prof = geotiff_profile(grid, 1, "uint8", IGNORE_INDEX)
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(lab, 1)
        ds.write_colormap(1, colormap)


def _default_color(lab_src: LabelSource, value: int) -> str:
    return lab_src.colormap.get(value, PALETTE[value % len(PALETTE)])


def label_colormap(lab_src: LabelSource) -> dict[int, tuple[int, int, int, int]]:
    """GDAL colour table of the label chips: the classes' colours, defaults for other values, 255 clear."""
    cmap = {v: (*hex_to_rgb(_default_color(lab_src, v)), 255) for v in range(IGNORE_INDEX)}
    cmap.update({c.value: (*hex_to_rgb(c.color), 255) for c in lab_src.classes})
    cmap[IGNORE_INDEX] = (0, 0, 0, 0)
    return cmap


class _Writer:
    """Writes chips on a few threads (GDAL compresses and writes without the GIL).

    At most ``2 * workers`` writes are pending, so memory stays bounded by a few chips; the first
    failed write re-raises in the exporting thread.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.pending: deque = deque()

    def __enter__(self) -> _Writer:
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="dlc-chip")
        return self

    def submit(self, fn, *args) -> None:
        """Queue ``fn(*args)``; blocks while too many writes are pending."""
        self.pending.append(self.pool.submit(fn, *args))
        while len(self.pending) > 2 * self.workers:
            self.pending.popleft().result()

    def drain(self) -> None:
        """Wait for every queued write (re-raising the first error)."""
        while self.pending:
            self.pending.popleft().result()

    def __exit__(self, *exc) -> None:
        for f in self.pending:
            f.cancel()
        self.pool.shutdown(wait=True)


@dataclass
class _Tally:
    windows: int = 0
    outside_aoi: int = 0
    no_data: int = 0
    too_few: int = 0
    low_coverage: int = 0
    best_fraction: float = 0.0


# ------------------------------------------------------------------------------ main API
def export_training_tiles(
    images: Sequence[str | Path], labels: str | Path, out_dir: str | Path, *,
    class_field: str | None = None, layer: str | None = None, images2: str | Path | None = None,
    class_table: str | Path | Sequence[ClassInfo] | None = None, tile_size: int = 256, stride: int = 128,
    aoi: str | Path | None = None, min_labelled_fraction: float = 0.05, export_empty: bool = False,
    line_buffer_px: int = 0, edge_erosion_px: int = 0, bands: Sequence[int] | None = None,
    dates: Sequence[str] | None = None, block_size: int | None = None, holdout: str | Path | None = None,
    additional_sensors: Sequence[str | Path] | None = None, water_mask_class: int | None = None,
    ndwi_threshold: float = 0.0, ndwi_margin: float = 0.2, valid_masks: str | Path | None = None,
    mask_kind: str = "valid", cloud_threshold: float = 0.5, cloud_policy: str = "none",
    min_valid_coverage: float = 0.0, feedback: Feedback | None = None,
) -> Manifest:
    """Cut image and label chips from rasters and labels into an ArcGIS-compatible chip folder.

    Args:
        images: one raster (single date) or T rasters of one grid (a time series, oldest first; dates
            from ``dates`` or parsed from the file names).
        labels: vector file with a class field, or a classified raster (any CRS/grid: reprojected
            onto the image grid with nearest neighbour).
        out_dir: output folder; must be empty or not exist.
        class_field: class attribute of vector labels (integer, or text named in ``class_table``).
        layer: layer of a multi-layer vector file.
        images2: second-date raster on the same grid (change pairs, written to ``images2/``).
        class_table: CSV (value,name[,color | red,green,blue]) or ClassInfo list; entries named
            "unlabelled"/"no data" become IGNORE_INDEX. Without it classes are the distinct values.
        tile_size: chip edge (pixels).
        stride: step between chips (pixels); ``stride < tile_size`` overlaps chips.
        aoi: polygon file; only chips fully inside are written.
        min_labelled_fraction: least share (0..1) of labelled pixels a chip needs.
        export_empty: write chips below ``min_labelled_fraction`` too (ArcGIS "output no feature tiles").
        line_buffer_px: dilation radius (pixels) of line labels (seed 002).
        edge_erosion_px: erosion radius (pixels) of class edges, set to 255 (seed 003).
        bands: 1-based band subset (same for every date); None = all bands.
        dates: ISO dates of a series, one per raster.
        block_size: spatial block edge (pixels) for ``ChipRecord.block``; default
            :func:`default_block_size`.
        holdout: polygon file; chips intersecting it get ``block="holdout"`` (validation only).
        additional_sensors: rasters of other sensors on the same grid (single-date input only): their
            bands are appended to the chip (early fusion, seed 001), named ``<file stem>_<band>``;
            ``sources["sensor_bands"]`` lists each sensor's chip bands. A pixel is valid only where
            every sensor has data.
        water_mask_class: class value of water; labels whose NDWI contradicts it, or whose water state
            flips between dates, become 255 (seed 000, :func:`core.labels.mask_inconsistent_water`).
            Needs green and NIR bands in the input (by name, :mod:`core.indices`).
        ndwi_threshold, ndwi_margin: NDWI water threshold, and the extra margin for non-water labels.
        valid_masks: raster with one band per date (or dates in its band descriptions): valid-data
            mask, cloud mask or cloud probability (``mask_kind``, ``cloud_threshold``), see
            :mod:`core.timeseries`.
        mask_kind: ``valid`` (1 = valid), ``cloud`` (1 = cloud) or ``probability`` (cloudy where
            ``>= cloud_threshold``).
        cloud_policy: ``none``, ``drop`` or ``interpolate`` (sequences; a single image under
            ``drop`` skips chips below the coverage threshold).
        min_valid_coverage: 0..1 valid share a date needs in a chip to be kept (seed 003: 0.99).
        feedback: progress/cancel/log.

    Returns:
        The :class:`Manifest` also saved as ``out_dir/manifest.json``.

    Raises:
        InputError: bad parameter or input (see messages), output folder not empty, no chip passes
            the thresholds.
        GridMismatchError: series rasters or ``images2`` on another grid.
        NoOverlapError: labels, AOI or holdout do not overlap the raster.
        CanceledError: canceled; everything written is removed and no manifest exists.
    """
    fb = ensure_feedback(feedback)
    if not 0.0 <= min_labelled_fraction <= 1.0:
        raise InputError(f"MIN_LABELLED_FRACTION is a share between 0 and 1, got {min_labelled_fraction}.")
    src = open_sources(images, images2, bands, dates, fb)
    _check_tiling(src.grid, tile_size, stride)
    prep = make_preprocess(src, additional_sensors, water_mask_class, ndwi_threshold, ndwi_margin, valid_masks,
                           mask_kind, cloud_threshold, cloud_policy, min_valid_coverage)
    table = read_class_table(class_table) if class_table is not None else None
    lab_src = open_labels(labels, src.grid, class_field=class_field, layer=layer, class_table=table,
                          line_buffer_px=line_buffer_px, edge_erosion_px=edge_erosion_px)
    for note in lab_src.notes:
        fb.warning(note)
    aoi_geom = _polygons(aoi, src.grid, "AOI") if aoi else None
    hold_geom = _polygons(holdout, src.grid, "hold-out") if holdout else None
    out, created = _prepare_out_dir(out_dir)
    try:
        return _export(src, lab_src, out, tile_size, stride, aoi_geom, hold_geom, min_labelled_fraction,
                       export_empty, block_size or default_block_size(src.grid, tile_size), fb, {
                           "labels": str(Path(labels)), "class_field": class_field, "layer": layer,
                           "class_table": str(class_table) if isinstance(class_table, (str, os.PathLike)) else None,
                           "aoi": str(aoi) if aoi else None, "holdout": str(holdout) if holdout else None,
                           "min_labelled_fraction": min_labelled_fraction, "export_empty": export_empty,
                           "line_buffer_px": line_buffer_px, "edge_erosion_px": edge_erosion_px,
                       }, prep)
    except BaseException:
        _cleanup(out, created)
        raise


# ------------------------------------------------------------------------------ preprocessing
def open_sensors(paths: Sequence[str | os.PathLike], src: ImageSources) -> list[SensorSource]:
    """Describe additional sensor rasters (all their bands), checked to lie on the main grid.

    Raises:
        InputError: missing file, used with a series or a pair, two sensors with one name.
        GridMismatchError: a raster on another grid.
    """
    from ..errors import GridMismatchError

    if src.kind != "single":
        raise InputError("ADDITIONAL_SENSORS stacks other sensors onto ONE input raster; it cannot be combined "
                         "with a time series or a second date.")
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
                "Projections > Warp with the input's extent, resolution and CRS).")
        if p.stem in names:
            raise InputError(f"Two input rasters are named {p.stem}; sensor band names are prefixed with the file "
                             "name, so give each sensor raster its own name (e.g. S1.tif).")
        names.add(p.stem)
        with rasterio.open(p) as ds:
            out.append(SensorSource(p.stem, p, [f"{p.stem}_{b}" for b in band_names(ds)],
                                    list(range(1, ds.count + 1)), ds.nodata))
    return out


def make_preprocess(src: ImageSources, sensors, water_class, ndwi_threshold, ndwi_margin, masks, mask_kind,
                    cloud_threshold, policy, min_cov) -> Preprocess | None:
    """A :class:`Preprocess` for the options, or None when none is set (also updates ``src`` for sensors).

    Raises:
        InputError, GridMismatchError, BandMismatchError: see :func:`open_sensors`,
            :class:`core.timeseries.DateMasks`, :func:`core.indices.band_positions`.
    """
    from ..preprocessing import timeseries as ts
    from ..preprocessing.indices import band_positions

    if policy not in ts.POLICIES:
        raise InputError(f"Unknown CLOUD_POLICY {policy!r}; use one of {', '.join(ts.POLICIES)}.")
    if not 0.0 <= min_cov <= 1.0:
        raise InputError(f"MIN_VALID_COVERAGE is a share between 0 and 1, got {min_cov}.")
    if policy == "interpolate" and src.kind != "sequence":
        raise InputError("CLOUD_POLICY interpolate fills gaps in time and needs a time series (several INPUT rasters).")
    if not (sensors or water_class is not None or masks or policy != "none"):
        return None
    if src.kind == "pair":
        raise InputError("Sensor fusion, water masking and cloud masks work on single images and time series, not "
                         "on change pairs (ADDITIONAL_INPUT).")
    sens = open_sensors(sensors, src) if sensors else []
    water_bands = None
    if water_class is not None:
        if not 0 <= int(water_class) < 255:
            raise InputError(f"WATER_MASK_CLASS must be a class value 0..254, got {water_class}.")
        with rasterio.open(src.images[0]) as ds:
            pos = band_positions(["NDWI"], band_names(ds))
        water_bands = (pos["green"] + 1, pos["nir"] + 1)
    date_masks = ts.DateMasks(masks, src.grid, src.dates or [""], mask_kind, cloud_threshold) if masks else None
    if date_masks is not None and src.kind == "single" and len(date_masks.bands) != 1:
        raise InputError(f"The mask raster has {len(date_masks.bands)} bands for one input raster; give a one-band mask.")
    if sens:
        src.bands = [*src.bands, *[b for ss in sens for b in ss.bands]]
    fill = src.nodata
    if (sens or date_masks is not None) and fill is None:
        dts = [src.dtype]
        for ss in sens:
            with rasterio.open(ss.path) as ds:
                dts.append(ds.dtypes[0])
        fill = ts.default_nodata(str(np.result_type(*dts)))
        src.nodata = fill
    return Preprocess(sens, date_masks, policy, float(min_cov), ts.date_offsets(src.dates) if src.dates else
                      np.zeros(1), water_class, float(ndwi_threshold), float(ndwi_margin), water_bands, fill, src.dates,
                      {"valid_masks": str(masks) if masks else None, "mask_kind": mask_kind,
                       "cloud_threshold": cloud_threshold})


class Preprocess:
    """The optional per-window steps of an export, in order (one instance per export, a context manager):

    1. :meth:`read`: append the bands of other sensors (early fusion, seed 001); combine nodata with
       the per-date valid masks (:class:`core.timeseries.DateMasks`, seed 003).
    2. :meth:`water`: NDWI-inconsistent water labels -> 255 (seed 000).
    3. :meth:`apply_policy`: cloud policy per chip (drop dates / interpolate, seed 003); invalid
       pixels written as the nodata value.

    Counts go to ``sources["preprocessing"]`` (:meth:`manifest_entries`) and the log (:meth:`log`).
    """

    def __init__(self, sensors: list[SensorSource], masks, policy: str, min_cov: float, times: np.ndarray,
                 water_class: int | None, ndwi_threshold: float, ndwi_margin: float,
                 water_bands: tuple[int, int] | None, fill: float | None, dates: list[str], mask_info: dict) -> None:
        self.sensors, self.masks, self.policy, self.min_cov, self.times = sensors, masks, policy, min_cov, times
        self.water_class, self.thr, self.margin, self.water_bands = water_class, ndwi_threshold, ndwi_margin, water_bands
        self.fill, self.dates, self.mask_info = fill, dates, mask_info
        self.contradicted = self.flipped = self.filled = self.skipped_coverage = 0
        self.chip_coverage: dict[str, list[float]] = {}
        self.chip_dropped: dict[str, list[str]] = {}
        self._cov: np.ndarray | None = None
        self._dropped: list[int] = []

    def __enter__(self) -> Preprocess:
        self._stack = contextlib.ExitStack()
        self._sds = [self._stack.enter_context(rasterio.open(ss.path)) for ss in self.sensors]
        if self.masks is not None:
            self._stack.enter_context(self.masks)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def read(self, datas: list[np.ndarray], valids: list[np.ndarray], win) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Fuse sensors and apply the masks: ``T x (C, h, w)`` data and ``T x (h, w)`` valid in and out."""
        if self._sds:
            parts, v = [datas[0]], valids[0].copy()
            for ds, ss in zip(self._sds, self.sensors):
                d = ds.read(ss.band_index, window=win)
                v &= valid_mask(d, ss.nodata)
                parts.append(d)
            dt_ = np.result_type(*parts)
            datas, valids = [np.concatenate([p.astype(dt_, copy=False) for p in parts])], [v]
        if self.masks is not None:
            mv = self.masks.read(win)
            valids = [v & mv[t] for t, v in enumerate(valids)]
        return datas, valids

    def water(self, lab: np.ndarray, dss, win, valids: list[np.ndarray]) -> np.ndarray:
        """Labels with NDWI-inconsistent water pixels set to 255 (unchanged without WATER_MASK_CLASS)."""
        if self.water_class is None:
            return lab
        from ..preprocessing.indices import normalized_difference
        from .labels import mask_inconsistent_water

        ndwi = []
        for ds, v in zip(dss, valids):
            g, n = ds.read(list(self.water_bands), window=win)
            ndwi.append(normalized_difference(g, n, v))
        lab, a, b = mask_inconsistent_water(lab, np.stack(ndwi), np.stack(valids), int(self.water_class), self.thr,
                                            self.margin)
        self.contradicted += a
        self.flipped += b
        return lab

    def apply_policy(self, datas: list[np.ndarray], valids: list[np.ndarray]
                     ) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
        """The cloud policy on one chip; False = skip the chip (single image below the coverage threshold)."""
        from ..preprocessing import timeseries as ts

        self._cov, self._dropped = None, []
        if self.masks is None and not self.sensors and self.policy == "none":
            return datas, valids, True
        if len(datas) > 1:
            res = ts.apply_policy(np.stack(datas), np.stack(valids), self.times, self.policy, self.min_cov)
            self._cov, self._dropped = res.coverage, res.dropped
            self.pending_filled = res.filled
            data = ts.to_dtype(res.data, datas[0].dtype) if self.policy == "interpolate" else res.data
            datas, valids = [np.array(d) for d in data], list(res.valid)
        else:
            self._cov = ts.chip_coverage(valids[0][None])
            self.pending_filled = 0
            if self.policy != "none" and self._cov[0] < self.min_cov:
                self.skipped_coverage += 1
                return datas, valids, False
        if self.fill is not None:
            for d, v in zip(datas, valids):
                d[:, ~v] = self.fill
        return datas, valids, True

    def chip_done(self, cid: str) -> None:
        """Record the coverage / dropped dates of the chip just written."""
        if self._cov is not None:
            self.chip_coverage[cid] = [round(float(c), 4) for c in self._cov]
            if self._dropped:
                self.chip_dropped[cid] = [self.dates[i] if self.dates else str(i) for i in self._dropped]
            self.filled += getattr(self, "pending_filled", 0)

    def manifest_entries(self, src: ImageSources) -> dict:
        """``preprocessing`` (and ``sensor_bands``) entries of ``manifest.sources``."""
        pre: dict = {}
        if self.water_class is not None:
            pre["water_mask"] = {"class": int(self.water_class), "ndwi_threshold": self.thr, "ndwi_margin": self.margin,
                                 "green_nir_bands": list(self.water_bands), "masked_contradicting": self.contradicted,
                                 "masked_flipping": self.flipped, "masked_pixels": self.contradicted + self.flipped}
        if self.masks is not None or self.policy != "none":
            cov = np.array(list(self.chip_coverage.values())) if self.chip_coverage else np.zeros((0, 1))
            pre["cloud"] = {**self.mask_info, "policy": self.policy, "min_valid_coverage": self.min_cov,
                            "mask_bands": list(self.masks.bands) if self.masks is not None else [],
                            "mean_coverage_per_date": [round(float(c), 4) for c in cov.mean(axis=0)] if len(cov) else [],
                            "chips_skipped_low_coverage": self.skipped_coverage, "pixels_interpolated": self.filled,
                            "dropped_dates": self.chip_dropped, "chip_coverage": self.chip_coverage}
        out: dict = {"preprocessing": pre} if pre else {}
        if self.sensors:
            main = [b for b in src.bands if not any(b in ss.bands for ss in self.sensors)]
            out["sensor_bands"] = {Path(src.images[0]).stem: main, **{ss.name: ss.bands for ss in self.sensors}}
        return out

    def log(self, fb: Feedback) -> None:
        """Report the counts."""
        if self.water_class is not None:
            fb.info(f"Water shoreline masking (NDWI threshold {self.thr:g}): {self.contradicted + self.flipped} label "
                    f"pixels set to 255 ({self.contradicted} contradict the NDWI, {self.flipped} flip between dates).")
        if self.chip_coverage or self.skipped_coverage:
            n_drop = sum(len(v) for v in self.chip_dropped.values())
            fb.info(f"Cloud policy {self.policy} (min valid coverage {self.min_cov:g}): {n_drop} chip dates dropped, "
                    f"{self.filled} pixels interpolated, {self.skipped_coverage} chips skipped for low coverage.")
        if self.dates and self.chip_dropped and len(self.chip_dropped) == len(self.chip_coverage):
            always = [d for d in self.dates if all(d in v for v in self.chip_dropped.values())]
            if always:
                fb.warning(f"Dates {always} were dropped in every chip; consider removing them from the series.")


def _cleanup(out: Path, created: bool) -> None:
    """Remove what an unfinished export wrote (the folder was empty when it started)."""
    for name in ("images", "images2", "labels"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("map.txt", arcgis.STATS_NAME, arcgis.EMD_NAME, "manifest.json", "manifest.json.tmp"):
        with contextlib.suppress(OSError):
            (out / name).unlink()
    if created:
        with contextlib.suppress(OSError):
            out.rmdir()


def _export(src: ImageSources, lab_src: LabelSource, out: Path, tile_size: int, stride: int, aoi_geom,
            hold_geom, min_frac: float, export_empty: bool, block_size: int, fb: Feedback,
            options: dict, prep: Preprocess | None = None) -> Manifest:
    from shapely.geometry import box

    grid, kind = src.grid, src.kind
    windows = tile_windows(grid.width, grid.height, tile_size, stride, cover_edges=False)
    for sub in ("images", "labels", *(["images2"] if kind == "pair" else [])):
        (out / sub).mkdir()
    c = len(src.bands)
    chip_names = [f"{d}:{b}" for d in src.dates for b in src.bands] if kind == "sequence" else src.bands
    acc, acc2 = BandAccumulator(c), BandAccumulator(c)
    counts_total = np.zeros(256, np.int64)
    chips_with = np.zeros(256, np.int64)
    classes = {ci.value: ci for ci in lab_src.classes}
    cmap = label_colormap(lab_src)
    records: list[ChipRecord] = []
    tally = _Tally(windows=len(windows))
    fb.info(f"{len(windows)} candidate windows of {tile_size} px, stride {stride} px on a "
            f"{grid.width} x {grid.height} px {kind} grid.")
    with contextlib.ExitStack() as stack:
        dss = [stack.enter_context(rasterio.open(p)) for p in src.images]
        ds2 = stack.enter_context(rasterio.open(src.images2)) if src.images2 else None
        lab_ds = stack.enter_context(aligned(lab_src.path, grid, Resampling.nearest)) if lab_src.kind == "raster" else None
        writer = stack.enter_context(_Writer())
        if prep is not None:
            stack.enter_context(prep)
        for i, win in enumerate(windows):
            check_canceled(fb)
            fb.set_progress(100.0 * i / len(windows))
            bounds = rasterio.windows.bounds(win, grid.transform)
            chip_box = box(*bounds)
            if aoi_geom is not None and not aoi_geom.covers(chip_box):
                tally.outside_aoi += 1
                continue
            datas = [ds.read(src.band_index, window=win) for ds in dss]
            valids = [valid_mask(d, src.nodata) for d in datas]
            if prep is not None:
                datas, valids = prep.read(datas, valids, win)
            data2 = ds2.read(src.band_index, window=win) if ds2 else None
            valid2 = valid_mask(data2, src.nodata2) if ds2 else None
            if kind == "sequence":
                has_data = np.logical_or.reduce(valids)
            elif kind == "pair":
                has_data = valids[0] & valid2
            else:
                has_data = valids[0]
            if not has_data.any():
                tally.no_data += 1
                continue
            lab = lab_src.read(win, lab_ds)
            if prep is not None:
                lab = prep.water(lab, dss, win, valids)
                datas, valids, keep = prep.apply_policy(datas, valids)
                if not keep:
                    tally.low_coverage += 1
                    continue
                has_data = np.logical_or.reduce(valids)
            lab[~has_data] = IGNORE_INDEX
            frac = float((lab != IGNORE_INDEX).mean())
            tally.best_fraction = max(tally.best_fraction, frac)
            if frac < min_frac and not export_empty:
                tally.too_few += 1
                continue
            cid = f"{len(records):09d}"
            wt = grid.window_transform(win)
            cgrid = RasterGrid(grid.crs, wt, int(win.width), int(win.height))
            image = np.concatenate(datas, axis=0) if kind == "sequence" else datas[0]
            writer.submit(_write_image, out / "images" / f"{cid}.tif", image, cgrid, src.nodata, chip_names)
            if ds2 is not None:
                writer.submit(_write_image, out / "images2" / f"{cid}.tif", data2, cgrid, src.nodata2, src.bands2)
                acc2.update_masked(data2, valid2)
            for d, v in zip(datas, valids):
                acc.update_masked(d, v)
            writer.submit(_write_label, out / "labels" / f"{cid}.tif", lab, cgrid, cmap)
            counts = np.bincount(lab.ravel(), minlength=256)
            counts[IGNORE_INDEX] = 0
            counts_total += counts
            chips_with += counts > 0
            block = f"{int(win.row_off) // block_size}_{int(win.col_off) // block_size}"
            if hold_geom is not None and hold_geom.intersects(chip_box):
                block = "holdout"
            if prep is not None:
                prep.chip_done(cid)
            records.append(ChipRecord(
                id=cid, image=f"images/{cid}.tif", label=f"labels/{cid}.tif",
                image2=f"images2/{cid}.tif" if ds2 is not None else None,
                window=[int(win.col_off), int(win.row_off), int(win.width), int(win.height)],
                transform=list(wt)[:6], block=block, labelled_fraction=round(frac, 6),
                class_counts={str(v): int(counts[v]) for v in np.nonzero(counts)[0]},
            ))
        writer.drain()
    if not records:
        raise InputError(_empty_message(tally, min_frac))
    final_classes = _final_classes(lab_src, classes, counts_total, chips_with)
    manifest = Manifest(
        kind=kind, crs_wkt=grid.crs.to_wkt() if grid.crs else "", pixel_size=list(grid.pixel_size),
        pixel_size_units=_units(grid), tile_size=tile_size, stride=stride, bands=src.bands,
        band_stats=acc.result(src.bands), classes=final_classes, chips=records, bands2=src.bands2,
        band_stats2=acc2.result(src.bands2) if kind == "pair" else [],
        time_steps=src.dates if kind == "sequence" else [], nodata=src.nodata, block_size=block_size,
        sources={"images": [str(p) for p in src.images], "images2": str(src.images2) if src.images2 else None,
                 "label_kind": lab_src.kind, "band_index": src.band_index, **options,
                 "candidate_windows": tally.windows, "skipped_outside_aoi": tally.outside_aoi,
                 "skipped_no_data": tally.no_data, "skipped_few_labels": tally.too_few,
                 **(prep.manifest_entries(src) if prep is not None else {})},
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), software=SOFTWARE,
    )
    arcgis.write_map_txt(out, records)
    arcgis.write_accumulated_stats(out, manifest)
    arcgis.write_model_definition(out, manifest)
    check_canceled(fb)
    manifest.save(out)
    fb.set_progress(100.0)
    fb.info(f"Wrote {len(records)} chips of {tally.windows} windows ({tally.too_few} with too few labels, "
            f"{tally.no_data} without image data, {tally.outside_aoi} outside the AOI skipped).")
    fb.info("Class pixels: " + ", ".join(f"{ci.value} {ci.name}: {ci.pixel_count}" for ci in final_classes))
    if prep is not None:
        prep.log(fb)
    return manifest


def _final_classes(lab_src: LabelSource, classes: dict[int, ClassInfo], counts: np.ndarray,
                   chips_with: np.ndarray) -> list[ClassInfo]:
    """Class table with pixel/chip counts; values met in raster labels but not in the table are added."""
    table = {v: ClassInfo(ci.value, ci.name, ci.color) for v, ci in classes.items()}
    for v in np.nonzero(counts)[0]:
        if int(v) not in table:
            table[int(v)] = ClassInfo(int(v), f"class {v}", _default_color(lab_src, int(v)))
    for v, ci in table.items():
        ci.pixel_count, ci.chip_count = int(counts[v]), int(chips_with[v])
    return [table[v] for v in sorted(table)]


def _units(grid: RasterGrid) -> str:
    if grid.crs is None:
        return "pixel"
    if grid.crs.is_geographic:
        return "degree"
    units = grid.crs.linear_units or "metre"
    return "metre" if units.lower() in ("metre", "meter", "m") else units


def _empty_message(t: _Tally, min_frac: float) -> str:
    parts = []
    if t.outside_aoi:
        parts.append(f"{t.outside_aoi} are not fully inside the AOI")
    if t.no_data:
        parts.append(f"{t.no_data} have no image data")
    if t.low_coverage:
        parts.append(f"{t.low_coverage} have less valid (cloud-free) coverage than MIN_VALID_COVERAGE")
    if t.too_few:
        parts.append(f"{t.too_few} have less than MIN_LABELLED_FRACTION={min_frac:g} labelled pixels "
                     f"(the best has {t.best_fraction:.3f})")
    fix = []
    if t.too_few:
        fix.append(f"lower MIN_LABELLED_FRACTION to {np.floor(t.best_fraction * 1000) / 1000:g} or less, or set "
                   "EXPORT_EMPTY" if t.best_fraction > 0 else "check that the labels cover the imagery (no "
                   "window holds a label), or set EXPORT_EMPTY")
    if t.outside_aoi:
        fix.append("enlarge the AOI or use a smaller TILE_SIZE")
    if t.low_coverage:
        fix.append("lower MIN_VALID_COVERAGE or use CLOUD_POLICY none")
    return (f"No chip was written: of {t.windows} windows, " + "; ".join(parts) + ". To get chips, "
            + " and ".join(fix) + ".")
