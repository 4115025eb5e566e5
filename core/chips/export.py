"""Export Training Tiles: georeferenced image/label chips plus an ArcGIS-compatible chip folder.

The QGIS-free counterpart of ArcGIS "Export Training Data For Deep Learning" (metadata format
Classified Tiles). One pass over the chip grid of :func:`core.raster.tiling.tile_windows`
(``cover_edges=False``, so chip counts follow ArcGIS's ``(size - tile) // stride + 1`` per axis); each
window goes through the steps of :class:`ChipExport` (AOI, image read, labels, cleaning, label share,
write) before the next one, so memory is bounded by a few chips. The folder layout and the
``manifest.json`` schema are those of :mod:`core.chips.manifest`; ``map.txt`` and
``esri_accumulated_stats.json`` come from :mod:`core.chips.arcgis`. ``manifest.json`` is written last.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from ..classes import IGNORE_INDEX, read_class_table
from ..errors import InputError
from ..feedback import Feedback, check_canceled, ensure_feedback
from ..preprocessing.normalize import valid_mask
from ..raster.grid import RasterGrid, aligned, crs_unit_name
from ..raster.tiling import tile_windows
from . import arcgis
from .cleaning import ChipPreprocessing, make_preprocessing
from .labels import LabelShaping, LabelSource, open_labels
from .manifest import ChipRecord, Manifest, default_block_size
from .options import ExportOptions
from .sources import ImageSources, check_tiling, open_sources, read_polygons
from .stats import ChipTotals
from .writer import (
    ChipWriter,
    default_color,
    label_colormap,
    prepare_out_dir,
    remove_export,
    write_image,
    write_label,
)

SOFTWARE = "deeplandcover.core.chips.export"


@dataclass
class SkipCounts:
    """Candidate windows of an export and those that gave no chip, by reason."""

    windows: int = 0
    outside_aoi: int = 0
    no_data: int = 0
    too_few: int = 0
    low_coverage: int = 0
    best_fraction: float = 0.0  # the largest labelled share of any window that had image data

    def empty_message(self, min_frac: float) -> str:
        """Why no chip was written and which parameter to change."""
        parts, fix = [], []
        if self.outside_aoi:
            parts.append(f"{self.outside_aoi} are not fully inside the AOI")
            fix.append("enlarge the AOI or use a smaller TILE_SIZE")
        if self.no_data:
            parts.append(f"{self.no_data} have no image data")
        if self.low_coverage:
            parts.append(f"{self.low_coverage} have less valid (cloud-free) coverage than MIN_VALID_COVERAGE")
            fix.append("lower MIN_VALID_COVERAGE or use CLOUD_POLICY none")
        if self.too_few:
            parts.append(
                f"{self.too_few} have less than MIN_LABELLED_FRACTION={min_frac:g} labelled pixels "
                f"(the best has {self.best_fraction:.3f})"
            )
            if self.best_fraction > 0:
                best = np.floor(self.best_fraction * 1000) / 1000
                fix.insert(0, f"lower MIN_LABELLED_FRACTION to {best:g} or less, or set EXPORT_EMPTY")
            else:
                fix.insert(0, "check that the labels cover the imagery (no window holds a label), or set EXPORT_EMPTY")
        return f"No chip was written: of {self.windows} windows, {'; '.join(parts)}. To get chips, {' and '.join(fix)}."


@dataclass
class _Chip:
    """One candidate window on its way through the pipeline of :class:`ChipExport`."""

    window: Window
    datas: list[np.ndarray]  # T x (C, h, w) image data (T = 1 unless a sequence)
    valids: list[np.ndarray]  # T x (h, w) bool, pixels with data
    data2: np.ndarray | None  # (C, h, w) second date of a pair
    valid2: np.ndarray | None
    has_data: np.ndarray  # (h, w) bool, pixels whose labels may be used
    labels: np.ndarray | None = None  # (h, w) uint8
    labelled_fraction: float = 0.0


@dataclass(frozen=True)
class ChipAreas:
    """The polygons that select and mark windows, in the chip grid's CRS (:func:`core.chips.sources.read_polygons`).

    Attributes:
        aoi: windows outside it give no chip; None: no AOI.
        holdout: chips inside it are marked as hold-out (kept out of training); None: no hold-out area.
    """

    aoi: Any = None
    holdout: Any = None


class ChipExport:
    """The per-window pipeline of one export and what it accumulates (statistics, counts, records).

    :meth:`run` visits every window of the chip grid; :meth:`process` sends one window through the
    steps :meth:`inside_aoi` -> :meth:`read_images` -> :meth:`read_labels` (labels, water masking,
    cloud policy) -> :meth:`enough_labels` -> :meth:`write`; a window that fails a step is counted
    in :attr:`skips` and gives no chip.
    """

    def __init__(
        self,
        options: ExportOptions,
        src: ImageSources,
        labels: LabelSource,
        prep: ChipPreprocessing | None,
        areas: ChipAreas,
        fb: Feedback,
    ) -> None:
        self.options = options
        self.src = src
        self.labels = labels
        self.prep = prep
        self.out = Path(options.out_dir)
        self.aoi, self.holdout = areas.aoi, areas.holdout
        self.fb = fb
        self.block_size = options.block_size or default_block_size(src.grid, options.tile_size)
        self.totals = ChipTotals(len(src.bands))
        self.records: list[ChipRecord] = []
        self.skips = SkipCounts()
        self.colormap = label_colormap(labels)
        self.chip_bands = [f"{d}:{b}" for d in src.dates for b in src.bands] if src.kind == "sequence" else src.bands

    def run(self) -> Manifest:
        """Write every chip, then ``map.txt``, the ArcGIS statistics and ``manifest.json``.

        Raises:
            InputError: no window gave a chip (the message says which threshold to change).
            CanceledError: canceled (the caller removes what was written).
        """
        o, grid, fb = self.options, self.src.grid, self.fb
        windows = tile_windows(grid.width, grid.height, o.tile_size, o.stride, cover_edges=False)
        self.skips.windows = len(windows)
        for sub in ("images", "labels", *(["images2"] if self.src.kind == "pair" else [])):
            (self.out / sub).mkdir()
        fb.info(
            f"{len(windows)} candidate windows of {o.tile_size} px, stride {o.stride} px on a "
            f"{grid.width} x {grid.height} px {self.src.kind} grid."
        )
        with contextlib.ExitStack() as stack:
            self._open(stack)
            for i, win in enumerate(windows):
                check_canceled(fb)
                fb.set_progress(100.0 * i / len(windows))
                self.process(win)
            self.writer.drain()
        if not self.records:
            raise InputError(self.skips.empty_message(o.min_labelled_fraction))
        manifest = self.manifest()
        arcgis.write_map_txt(self.out, self.records)
        arcgis.write_accumulated_stats(self.out, manifest)
        arcgis.write_model_definition(self.out, manifest)
        check_canceled(fb)
        manifest.save(self.out)
        fb.set_progress(100.0)
        self._log(manifest)
        return manifest

    def _open(self, stack: contextlib.ExitStack) -> None:
        src = self.src
        self.image_ds = [stack.enter_context(rasterio.open(p)) for p in src.images]
        self.image2_ds = (
            stack.enter_context(aligned(src.images2, src.grid, Resampling.bilinear)) if src.images2 else None
        )
        stack.enter_context(self.labels)  # a raster source keeps its dataset open across the windows
        self.writer = stack.enter_context(ChipWriter())
        if self.prep is not None:
            stack.enter_context(self.prep)

    def process(self, win: Window) -> None:
        """Send one window through the pipeline; it becomes a chip or is counted as skipped."""
        from shapely.geometry import box

        chip_box = box(*rasterio.windows.bounds(win, self.src.grid.transform))
        if not self.inside_aoi(chip_box):
            return
        chip = self.read_images(win)
        if chip is None or not self.read_labels(chip) or not self.enough_labels(chip):
            return
        self.write(chip, chip_box)

    def inside_aoi(self, chip_box) -> bool:
        """False (and counted) when an AOI is set and the chip is not fully inside it."""
        if self.aoi is not None and not self.aoi.covers(chip_box):
            self.skips.outside_aoi += 1
            return False
        return True

    def read_images(self, win: Window) -> _Chip | None:
        """Image data and validity of every date (sensors fused, masks applied); None (counted) without data."""
        src = self.src
        datas = [ds.read(src.band_index, window=win) for ds in self.image_ds]
        valids = [valid_mask(d, src.nodata) for d in datas]
        if self.prep is not None:
            datas, valids = self.prep.read(datas, valids, win)
        data2 = valid2 = None
        if self.image2_ds is not None:
            data2 = self.image2_ds.read(src.band_index, window=win)
            valid2 = valid_mask(data2, src.nodata2)
        if src.kind == "sequence":
            has_data = np.logical_or.reduce(valids)
        elif src.kind == "pair":
            has_data = valids[0] & valid2
        else:
            has_data = valids[0]
        if not has_data.any():
            self.skips.no_data += 1
            return None
        return _Chip(win, datas, valids, data2, valid2, has_data)

    def read_labels(self, chip: _Chip) -> bool:
        """Label the chip, mask water labels, apply the cloud policy; False (counted) when the policy skips it."""
        lab = self.labels.read(chip.window)
        if self.prep is not None:
            lab = self.prep.water(lab, self.image_ds, chip.window, chip.valids)
            chip.datas, chip.valids, keep = self.prep.apply_policy(chip.datas, chip.valids)
            if not keep:
                self.skips.low_coverage += 1
                return False
            chip.has_data = np.logical_or.reduce(chip.valids)
        lab[~chip.has_data] = IGNORE_INDEX
        chip.labels = lab
        return True

    def enough_labels(self, chip: _Chip) -> bool:
        """False (counted) when the labelled share is below MIN_LABELLED_FRACTION and EXPORT_EMPTY is off."""
        chip.labelled_fraction = float((chip.labels != IGNORE_INDEX).mean())
        self.skips.best_fraction = max(self.skips.best_fraction, chip.labelled_fraction)
        if chip.labelled_fraction < self.options.min_labelled_fraction and not self.options.export_empty:
            self.skips.too_few += 1
            return False
        return True

    def write(self, chip: _Chip, chip_box) -> None:
        """Queue the chip's GeoTIFFs, add it to the statistics and class counts, and record it."""
        src, win = self.src, chip.window
        cid = f"{len(self.records):09d}"
        transform = src.grid.window_transform(win)
        chip_grid = RasterGrid(src.grid.crs, transform, int(win.width), int(win.height))
        image = np.concatenate(chip.datas, axis=0) if src.kind == "sequence" else chip.datas[0]
        self.writer.submit(
            write_image, self.out / "images" / f"{cid}.tif", image, chip_grid, src.nodata, self.chip_bands
        )
        if chip.data2 is not None:
            self.writer.submit(
                write_image, self.out / "images2" / f"{cid}.tif", chip.data2, chip_grid, src.nodata2, src.bands2
            )
        self.writer.submit(write_label, self.out / "labels" / f"{cid}.tif", chip.labels, chip_grid, self.colormap)
        counts = self.totals.add(chip.datas, chip.valids, chip.data2, chip.valid2, chip.labels)
        block = f"{int(win.row_off) // self.block_size}_{int(win.col_off) // self.block_size}"
        if self.holdout is not None and self.holdout.intersects(chip_box):
            block = "holdout"
        if self.prep is not None:
            self.prep.chip_done(cid)
        self.records.append(
            ChipRecord(
                id=cid,
                image=f"images/{cid}.tif",
                label=f"labels/{cid}.tif",
                image2=f"images2/{cid}.tif" if chip.data2 is not None else None,
                window=[int(win.col_off), int(win.row_off), int(win.width), int(win.height)],
                transform=list(transform)[:6],
                block=block,
                labelled_fraction=round(chip.labelled_fraction, 6),
                class_counts={str(v): int(counts[v]) for v in np.nonzero(counts)[0]},
            )
        )

    def manifest(self) -> Manifest:
        """The manifest of the chips written."""
        src, grid, s = self.src, self.src.grid, self.skips
        sources = {
            "images": [str(p) for p in src.images],
            "images2": str(src.images2) if src.images2 else None,
            **({"images2_resampling": src.resampling2} if src.resampling2 else {}),
            "label_kind": self.labels.kind,
            "band_index": src.band_index,
            **self.options.manifest_entries(),
            "candidate_windows": s.windows,
            "skipped_outside_aoi": s.outside_aoi,
            "skipped_no_data": s.no_data,
            "skipped_few_labels": s.too_few,
            **(self.prep.manifest_entries(src) if self.prep is not None else {}),
        }
        return Manifest(
            kind=src.kind,
            crs_wkt=grid.crs.to_wkt() if grid.crs else "",
            pixel_size=list(grid.pixel_size),
            pixel_size_units=crs_unit_name(grid.crs),
            tile_size=self.options.tile_size,
            stride=self.options.stride,
            bands=src.bands,
            band_stats=self.totals.bands.result(src.bands),
            classes=self.totals.classes(self.labels.classes, lambda v: default_color(self.labels, v)),
            chips=self.records,
            bands2=src.bands2,
            band_stats2=self.totals.bands2.result(src.bands2) if src.kind == "pair" else [],
            time_steps=src.dates if src.kind == "sequence" else [],
            nodata=src.nodata,
            block_size=self.block_size,
            sources=sources,
            created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            software=SOFTWARE,
        )

    def _log(self, manifest: Manifest) -> None:
        s = self.skips
        self.fb.info(
            f"Wrote {len(self.records)} chips of {s.windows} windows ({s.too_few} with too few labels, "
            f"{s.no_data} without image data, {s.outside_aoi} outside the AOI skipped)."
        )
        self.fb.info("Class pixels: " + ", ".join(f"{c.value} {c.name}: {c.pixel_count}" for c in manifest.classes))
        if self.prep is not None:
            self.prep.log(self.fb)


def export_training_tiles(options: ExportOptions, feedback: Feedback | None = None) -> Manifest:
    """Cut image and label chips from rasters and labels into an ArcGIS-compatible chip folder.

    Every input is checked before the first chip is written; then each window of the chip grid goes
    through :class:`ChipExport`.

    Args:
        options: inputs, output folder, tiling, label rules and cleaning steps (:class:`ExportOptions`).
        feedback: progress/cancel/log.

    Returns:
        The :class:`Manifest` also saved as ``options.out_dir/manifest.json``.

    Raises:
        InputError: bad parameter or input (see messages), output folder not empty, no chip passes
            the thresholds.
        GridMismatchError: series rasters, ``images2`` or a sensor raster on another grid.
        NoOverlapError: labels, AOI or holdout do not overlap the raster.
        CanceledError: canceled; everything written is removed and no manifest exists.
    """
    fb = ensure_feedback(feedback)
    o = options
    if not 0.0 <= o.min_labelled_fraction <= 1.0:
        raise InputError(f"MIN_LABELLED_FRACTION is a share between 0 and 1, got {o.min_labelled_fraction}.")
    src = open_sources(o.images, o.images2, o.bands, o.dates, fb)
    check_tiling(src.grid, o.tile_size, o.stride)
    prep = make_preprocessing(src, o.cleaning)
    table = read_class_table(o.class_table) if o.class_table is not None else None
    shaping = LabelShaping(o.line_buffer_px, o.edge_erosion_px)
    labels = open_labels(
        o.labels, src.grid, class_field=o.class_field, layer=o.layer, class_table=table, shaping=shaping
    )
    for note in labels.notes:
        fb.warning(note)
    areas = ChipAreas(
        read_polygons(o.aoi, src.grid, "AOI") if o.aoi else None,
        read_polygons(o.holdout, src.grid, "hold-out") if o.holdout else None,
    )
    out, created = prepare_out_dir(o.out_dir)
    try:
        return ChipExport(o, src, labels, prep, areas, fb).run()
    except BaseException:
        remove_export(out, created)
        raise
