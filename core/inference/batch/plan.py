"""What a batch run does: its input groups and its tasks (whole rasters, or blocks with their halos).

The units of work are :class:`BatchTask` s:

* **whole-raster mode** (``block_size`` None/0): one task per input raster (or per group of rasters
  of a time-series / change model).
* **block mode** (``block_size`` > 0): the grid of each input is cut into ``block_size`` blocks
  (pixels, aligned to the pixel grid). Each block is classified over a *halo* window that holds
  exactly the tiles of the whole-raster tiling that touch the block (see :func:`axis_span`), then
  cropped to the block. Because every block pixel then sums the same tiles with the same weights in
  the same order as a whole-raster run, the mosaic of blocks equals the whole-raster output byte for
  byte: there are no seams.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.transform
from rasterio.windows import Window

from ...errors import InputError
from ...raster.grid import RasterGrid
from ...raster.tiling import TileGrid

#: File suffixes taken as rasters from folders and globs.
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")


@dataclass(frozen=True)
class BatchTask:
    """One unit of work: classify ``inputs`` (over ``halo``) and write ``output`` (the ``block`` part).

    Attributes:
        name: unique task name (the output file stem).
        inputs: raster path(s) of one model input (1, T dates, or a pair), absolute.
        output: the final class GeoTIFF.
        block: ``(col_off, row_off, width, height)`` pixels of the input grid written to ``output``,
            or None for the whole raster.
        halo: ``(col_off, row_off, width, height)`` pixels classified to produce ``block`` (contains it).
    """

    name: str
    inputs: tuple[str, ...]
    output: str
    block: tuple[int, int, int, int] | None = None
    halo: tuple[int, int, int, int] | None = None


def expand_inputs(inputs: str | os.PathLike | Sequence[Any], pattern: str = "*.tif") -> list[tuple[Path, ...]]:
    """Turn a folder, a glob, a file (raster or ``.vrt`` mosaic) or a list of them into input groups.

    Args:
        inputs: a folder (rasters matching ``pattern`` in it), a glob (``/data/*/T33*.tif``), a raster
            file, or a sequence of those; a tuple/list *inside* the sequence is one group of rasters
            classified together (a time series or a change pair).
        pattern: file pattern used for folders.

    Returns:
        One tuple of absolute paths per task input, sorted by name within each folder/glob.

    Raises:
        InputError: a path that does not exist, or nothing found.
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    groups: list[tuple[Path, ...]] = []
    for item in items:
        if isinstance(item, (tuple, list)):
            group = tuple(Path(p).resolve() for p in item)
            missing = [str(p) for p in group if not p.is_file()]
            if missing:
                raise InputError(f"Input raster(s) {missing} do not exist; check the paths.")
            groups.append(group)
            continue
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.glob(pattern) if q.is_file() and not q.name.startswith("."))
        elif glob.has_magic(str(p)):
            found = sorted(Path(q) for q in glob.glob(str(p)) if Path(q).is_file())
        elif p.is_file():
            found = [p]
        else:
            raise InputError(f"Input {p} is neither a raster file, a folder nor a glob pattern that exists.")
        groups.extend((q.resolve(),) for q in found if q.suffix.lower() in RASTER_SUFFIXES)
    if not groups:
        raise InputError(f"No input rasters found in {inputs!s} (pattern {pattern!r}); check the folder and pattern.")
    return groups


def axis_span(offsets: Sequence[int], size: int, length: int, a: int, b: int) -> tuple[int, int]:
    """The stretch ``[start, end)`` of one axis to classify so that pixels ``[a, b)`` come out exact.

    The whole-raster tiling puts tiles of ``size`` pixels at ``offsets`` (:attr:`TileGrid.rows` or
    :attr:`TileGrid.cols`). A pixel's result is the weighted sum of the tiles covering it, so ``[start, end)``
    is the union of the tiles that touch ``[a, b)``. ``start`` is such a tile offset, so the tiling of
    ``[start, end)`` restarts on the same offsets; ``end`` is the end of the last touching tile, so no extra
    snapped tile (``cover_edges``) of the shorter stretch covers ``[a, b)``. Gaussian weights depend only on
    the position inside a tile; centre-crop cut lines between tiles that both touch ``[a, b)`` are the
    same, and the others lie outside ``[a, b)`` (overlap >= 0).

    Args:
        offsets: tile offsets along the axis, pixels. size: tile extent along the axis (``min(tile, length)``).
        length: axis length of the raster, pixels.
        a, b: first and one-past-last pixel of the block along the axis.

    Returns:
        ``(start, end)`` pixels, ``start <= a < b <= end <= length``.
    """
    touching = [o for o in offsets if o < b and o + size > a]
    return min(touching), min(length, max(o + size for o in touching))


def plan_blocks(grid: TileGrid, block_size: int) -> list[tuple[Window, Window]]:
    """Blocks of ``block_size`` pixels over ``grid``'s raster, each with its halo window.

    Blocks start at multiples of ``block_size`` (the last ones are smaller); halos come from
    :func:`axis_span` so that cropping each halo's classification to its block reproduces the
    whole-raster classification (tiled by ``grid``) exactly.

    Returns:
        Row-major list of ``(block, halo)`` windows in pixels of the grid.

    Raises:
        InputError: ``block_size`` smaller than the tile size.
    """
    if block_size < grid.tile_px:
        raise InputError(
            f"Block size {block_size} px is smaller than the tile size {grid.tile_px} px; use blocks of "
            "several thousand pixels (e.g. 4096), or 0 to classify whole rasters."
        )
    width, height = grid.width, grid.height
    out = []
    for r in range(0, height, block_size):
        r1 = min(r + block_size, height)
        y0, y1 = axis_span(grid.rows, grid.tile_h, height, r, r1)
        for c in range(0, width, block_size):
            c1 = min(c + block_size, width)
            x0, x1 = axis_span(grid.cols, grid.tile_w, width, c, c1)
            out.append((Window(c, r, c1 - c, r1 - r), Window(x0, y0, x1 - x0, y1 - y0)))
    return out


def _win(w: Window) -> tuple[int, int, int, int]:
    return int(w.col_off), int(w.row_off), int(w.width), int(w.height)


def plan_tasks(
    groups: Sequence[tuple[Path, ...]], out_dir: Path, block_size: int | None, tile: int, overlap: int
) -> list[BatchTask]:
    """One task per group (whole rasters) or per block of each group's grid.

    Output names: ``<stem of first raster>_class.tif``, or ``<stem>_class_<row>_<col>.tif`` for blocks
    (block row and column numbers, zero-padded).

    Raises:
        InputError: two groups whose first rasters share a file stem (their outputs would collide).
    """
    stems: dict[str, Path] = {}
    tasks: list[BatchTask] = []
    for group in groups:
        stem = group[0].stem
        if stem in stems:
            raise InputError(
                f"Two inputs are both named {stem!r} ({stems[stem]} and {group[0]}); their outputs "
                "would collide in one folder. Rename one or classify the folders separately."
            )
        stems[stem] = group[0]
        ins = tuple(str(p) for p in group)
        if not block_size:
            tasks.append(BatchTask(f"{stem}_class", ins, str(out_dir / f"{stem}_class.tif")))
            continue
        g = RasterGrid.from_path(group[0])
        nr, nc = -(-g.height // block_size), -(-g.width // block_size)
        dr, dc = len(str(nr - 1)), len(str(nc - 1))
        for block, halo in plan_blocks(TileGrid(g.width, g.height, tile, overlap), block_size):
            i, j = int(block.row_off) // block_size, int(block.col_off) // block_size
            name = f"{stem}_class_{i:0{dr}d}_{j:0{dc}d}"
            tasks.append(BatchTask(name, ins, str(out_dir / f"{name}.tif"), _win(block), _win(halo)))
    return tasks


def task_bounds(tasks: Sequence[BatchTask]) -> tuple[float, float, float, float]:
    """Union of the areas of all tasks (whole rasters or blocks) with readable inputs, CRS units."""
    grids: dict[str, RasterGrid] = {}
    boxes = []
    for t in tasks:
        if t.inputs[0] not in grids:
            try:
                grids[t.inputs[0]] = RasterGrid.from_path(t.inputs[0])
            except (InputError, rasterio.errors.RasterioError):  # an unreadable input (reported as failed) adds no area
                continue
        g = grids[t.inputs[0]]
        if t.block is not None:
            c, r, w, h = t.block
            g = RasterGrid(g.crs, g.window_transform(Window(c, r, w, h)), w, h)
        boxes.append(g.bounds)
    b = np.array(boxes, dtype=float)
    return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())
