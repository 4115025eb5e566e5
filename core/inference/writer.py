"""Classify Pixels outputs: the class and probability GeoTIFFs, the writer of finished chunks, the area table.

Finished :class:`core.inference.blending.Chunk` s are normalised by their summed weights, argmax'ed to
class values and written (in a writer thread, under :data:`core.raster.io.GDAL_IO_LOCK`) into tiled
GeoTIFFs opened once inside :func:`core.raster.io.atomic_output`.
"""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from .. import classes as styles
from ..classes import IGNORE_INDEX, ClassInfo
from ..raster.grid import RasterGrid
from ..raster.io import GDAL_IO_LOCK, atomic_output, atomic_raster, geotiff_profile
from .blending import Chunk
from .options import OutputPaths

#: Output class raster nodata (never a class value).
NODATA = IGNORE_INDEX


class ChunkWriter:
    """Turns finished chunks into class values (+ probabilities) and writes them (writer thread)."""

    def __init__(self, cls_ds, prob_ds, classes: list[ClassInfo]) -> None:
        self.cls_ds, self.prob_ds = cls_ds, prob_ds
        self.lut = np.array([c.value for c in classes], np.uint8)
        self.counts = np.zeros(len(classes), np.int64)
        self.nodata = 0

    def write(self, chunk: Chunk) -> None:
        """Normalise ``chunk`` by its weights, argmax, write class values (nodata 255) and probabilities."""
        wsum = chunk.wsum
        valid = chunk.valid & (wsum > 0)
        probs = chunk.acc
        if self.prob_ds is not None:  # argmax does not need the division: wsum > 0 is one factor per pixel
            probs /= np.where(wsum > 0, wsum, np.float32(1))
        out = self.lut[_argmax0(probs)]
        out[~valid] = NODATA
        per_value = np.bincount(out.ravel(), minlength=256)
        self.counts += per_value[self.lut]
        self.nodata += int(per_value[NODATA])
        win = Window(chunk.col, chunk.row, out.shape[1], out.shape[0])
        if self.prob_ds is not None:
            probs[:, ~valid] = np.nan
        with GDAL_IO_LOCK:
            self.cls_ds.write(out, 1, window=win)
            if self.prob_ds is not None:
                self.prob_ds.write(probs, window=win)


def _argmax0(a: np.ndarray) -> np.ndarray:
    """``argmax(a, axis=0)`` as uint8 for ``(K, H, W)`` float32, in K contiguous passes.

    ``np.argmax(axis=0)`` first copies the array into a (H, W, K) layout; this does not. Ties go to
    the lowest k, as with numpy.
    """
    best = a[0].copy()
    idx = np.zeros(a.shape[1:], np.uint8)
    for k in range(1, a.shape[0]):
        better = a[k] > best
        idx[better] = k
        np.maximum(best, a[k], out=best)
    return idx


def write_area_table(path: Path, classes: list[ClassInfo], counts: np.ndarray, area_m2: float | None) -> None:
    """CSV ``value,name,pixels,m2,ha,percent`` (percent of classified pixels; m2/ha empty without a CRS)."""
    total = int(counts.sum())
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        wr = csv.writer(f)
        wr.writerow(["value", "name", "pixels", "m2", "ha", "percent"])
        for c, n in zip(classes, counts):
            m2 = "" if area_m2 is None else f"{n * area_m2:.2f}"
            ha = "" if area_m2 is None else f"{n * area_m2 / 1e4:.4f}"
            wr.writerow([c.value, c.name, int(n), m2, ha, f"{100.0 * n / total:.4f}" if total else "0"])


def open_outputs(
    stack: contextlib.ExitStack,
    grid: RasterGrid,
    classes: list[ClassInfo],
    outputs: OutputPaths,
    tags: dict[str, str] | None = None,
    cog: bool = False,
):
    """Open the class (and probability) GeoTIFFs of ``outputs`` on ``grid`` inside :func:`atomic_raster`.

    Args:
        tags: metadata items written into both GeoTIFFs (:meth:`core.provenance.Provenance.tags`).
        cog: write both as Cloud-Optimised GeoTIFFs (GDAL's COG driver, when ``stack`` closes).

    Returns:
        ``(class dataset, probability dataset or None)``, open for writing until ``stack`` closes.
    """
    cls_tmp = stack.enter_context(atomic_raster(outputs.classes, cog))
    cls_ds = stack.enter_context(rasterio.open(cls_tmp, "w", **geotiff_profile(grid, 1, "uint8", nodata=NODATA)))
    cls_ds.write_colormap(1, styles.colormap(classes))
    cls_ds.set_band_description(1, "class")
    cls_ds.update_tags(**(tags or {}))
    prob_ds = None
    if outputs.probabilities is not None:
        prob_tmp = stack.enter_context(atomic_raster(outputs.probabilities, cog))
        prof = geotiff_profile(grid, len(classes), "float32", nodata=float("nan"))
        prob_ds = stack.enter_context(rasterio.open(prob_tmp, "w", **prof))
        prob_ds.update_tags(**(tags or {}))
        for i, c in enumerate(classes, 1):
            prob_ds.set_band_description(i, c.name)
    return cls_ds, prob_ds
