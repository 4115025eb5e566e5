"""Writing chips: the output folder, image and label GeoTIFFs on a few threads, the label colour table.

Chips are tiled, compressed GeoTIFFs on their own small grid (:func:`core.raster.io.geotiff_profile`);
label chips are uint8 with nodata :data:`~core.classes.IGNORE_INDEX` (255, transparent) and a
colour table, so they display in QGIS and ArcGIS as they are.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import rasterio

from ..classes import IGNORE_INDEX, hex_to_rgb, palette_color
from ..errors import InputError
from ..raster.grid import RasterGrid
from ..raster.io import geotiff_profile
from . import arcgis
from .labels import LabelSource
from .manifest import MANIFEST_NAME


def write_image(path: Path, data: np.ndarray, grid: RasterGrid, nodata: float | None, names: Sequence[str]) -> None:
    """Write a ``(C, H, W)`` image chip on ``grid`` with band descriptions ``names`` (float: predictor 3)."""
    prof = geotiff_profile(grid, data.shape[0], str(data.dtype), nodata)
    if data.dtype.kind == "f":
        prof["predictor"] = 3
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(data)
        ds.descriptions = tuple(names)


def write_label(path: Path, lab: np.ndarray, grid: RasterGrid, colormap: dict) -> None:
    """Write an ``(H, W)`` uint8 label chip on ``grid`` (nodata 255) with a GDAL colour table."""
    prof = geotiff_profile(grid, 1, "uint8", IGNORE_INDEX)
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(lab, 1)
        ds.write_colormap(1, colormap)


def default_color(labels: LabelSource, value: int) -> str:
    """Colour of a label value without a class: the label raster's own colour table, else the palette."""
    return labels.colormap.get(value, palette_color(value))


def label_colormap(labels: LabelSource) -> dict[int, tuple[int, int, int, int]]:
    """GDAL colour table of the label chips: the classes' colours, defaults for other values, 255 clear."""
    cmap = {v: (*hex_to_rgb(default_color(labels, v)), 255) for v in range(IGNORE_INDEX)}
    cmap.update({c.value: (*hex_to_rgb(c.color), 255) for c in labels.classes})
    cmap[IGNORE_INDEX] = (0, 0, 0, 0)
    return cmap


class ChipWriter:
    """Writes chips on a few threads (GDAL compresses and writes without the GIL); a context manager.

    At most ``2 * workers`` writes are pending, so memory stays bounded by a few chips; the first
    failed write re-raises in the exporting thread.

    Args:
        workers: writer threads; default: the CPU count, at most 4.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.pending: deque[Future] = deque()
        self.pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> ChipWriter:
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="dlc-chip")
        return self

    def submit(self, fn: Callable[..., None], *args) -> None:
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


def prepare_out_dir(out_dir: str | os.PathLike) -> tuple[Path, bool]:
    """The output folder, created when missing; and whether it was created."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"Output folder {out} is a file; choose a folder.")
    if out.is_dir() and any(out.iterdir()):
        raise InputError(
            f"Output folder {out} is not empty; choose an empty or new folder so that old chips "
            "are not mixed with new ones."
        )
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    return out, created


def remove_export(out: Path, created: bool) -> None:
    """Remove what an unfinished export wrote (the folder was empty when it started)."""
    for name in ("images", "images2", "labels"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (arcgis.MAP_NAME, arcgis.STATS_NAME, arcgis.EMD_NAME, MANIFEST_NAME):
        with contextlib.suppress(OSError):
            (out / name).unlink()
    if created:
        with contextlib.suppress(OSError):
            out.rmdir()
