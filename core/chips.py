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

from . import arcgis
from .errors import InputError, NoOverlapError
from .feedback import Feedback, check_canceled, ensure_feedback
from .labels import PALETTE, LabelSource, hex_to_rgb, open_labels, read_class_table
from .manifest import BandStats, ChipRecord, ClassInfo, Manifest
from .raster import (
    IGNORE_INDEX,
    RasterGrid,
    aligned,
    band_names,
    geotiff_profile,
    require_same_grid,
    tile_windows,
    valid_mask,
)

SOFTWARE = "deeplandcover.core.chips"
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
            from .errors import GridMismatchError

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
    best_fraction: float = 0.0


# ------------------------------------------------------------------------------ main API
def export_training_tiles(
    images: Sequence[str | Path], labels: str | Path, out_dir: str | Path, *,
    class_field: str | None = None, layer: str | None = None, images2: str | Path | None = None,
    class_table: str | Path | Sequence[ClassInfo] | None = None, tile_size: int = 256, stride: int = 128,
    aoi: str | Path | None = None, min_labelled_fraction: float = 0.05, export_empty: bool = False,
    line_buffer_px: int = 0, edge_erosion_px: int = 0, bands: Sequence[int] | None = None,
    dates: Sequence[str] | None = None, block_size: int | None = None, holdout: str | Path | None = None,
    feedback: Feedback | None = None,
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
        block_size: spatial block edge (pixels) for ``ChipRecord.block``; default ``4 * tile_size``.
        holdout: polygon file; chips intersecting it get ``block="holdout"`` (validation only).
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
                       export_empty, block_size or 4 * tile_size, fb, {
                           "labels": str(Path(labels)), "class_field": class_field, "layer": layer,
                           "class_table": str(class_table) if isinstance(class_table, (str, os.PathLike)) else None,
                           "aoi": str(aoi) if aoi else None, "holdout": str(holdout) if holdout else None,
                           "min_labelled_fraction": min_labelled_fraction, "export_empty": export_empty,
                           "line_buffer_px": line_buffer_px, "edge_erosion_px": edge_erosion_px,
                       })
    except BaseException:
        _cleanup(out, created)
        raise


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
            options: dict) -> Manifest:
    from shapely.geometry import box

    grid, kind = src.grid, src.kind
    windows = tile_windows(grid.width, grid.height, tile_size, stride, cover_edges=False)
    for sub in ("images", "labels", *(["images2"] if kind == "pair" else [])):
        (out / sub).mkdir()
    c = len(src.band_index)
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
                 "skipped_no_data": tally.no_data, "skipped_few_labels": tally.too_few},
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
    return (f"No chip was written: of {t.windows} windows, " + "; ".join(parts) + ". To get chips, "
            + " and ".join(fix) + ".")
