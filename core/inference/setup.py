"""What Classify Pixels sets up before its tile loop: input paths, open datasets, tile size and overlap.

Used by :func:`core.inference.engine.classify_raster` (and :func:`tile_params` by the batch runner).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import rasterio
from rasterio.enums import Resampling

from ..errors import InputError
from ..feedback import Feedback
from ..modelcard import ModelCard
from ..raster.grid import RasterGrid, aligned, band_names
from .bands import BandSource
from .options import ClassifyOptions
from .pixel_size import model_grid


def with_overrides(card: ModelCard, opts: ClassifyOptions, warnings: list[str]) -> ModelCard:
    """``card`` with ``opts.input_scale`` applied; a warning naming the defaults assumed for a model without metadata."""
    assumed = card.training.get("assumed") or []
    if opts.input_scale:
        card = dataclasses.replace(card, input_scale=float(opts.input_scale))
        assumed = [a for a in assumed if "255" not in a]
    if assumed:
        warnings.append(
            "The model's metadata does not say everything; Deepness's defaults were assumed: "
            + "; ".join(assumed)
            + ". Override them with INPUT_SCALE (raw value multiplier), TILE_SIZE, OVERLAP and BAND_MAPPING, "
            "or add the Deepness metadata keys to the model."
        )
    return card


def input_paths(inputs: Sequence[str | os.PathLike], opts: ClassifyOptions) -> list[Path]:
    """The input rasters as paths, after the checks that need no file opened.

    Raises:
        InputError: no input, a missing input, a batch size below 1.
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise InputError("No input raster given.")
    for p in paths:
        if not p.is_file():
            raise InputError(f"Input raster {p} does not exist.")
    if opts.batch_size < 1:
        raise InputError(f"Batch size must be at least 1, got {opts.batch_size}.")
    return paths


def open_inputs(
    stack: contextlib.ExitStack,
    paths: list[Path],
    card: ModelCard,
    resample: bool,
    fb: Feedback,
    warnings: list[str] | None = None,
) -> tuple[list, list[list[str]], RasterGrid]:
    """The open input datasets, their band names and the grid they are read on.

    The first raster's grid is the output grid. A later date on another pixel grid that overlaps it (a
    data set that delivers each date on its own grid, e.g. OSCD's abudhabi: same bounds, a few pixels
    fewer) is read through :func:`core.raster.grid.aligned`, resampled bilinearly onto the first date's
    grid; the resampling is reported in ``warnings`` (and so in the log and the run's result). With
    ``resample`` the datasets are read onto :func:`model_grid` instead (band names come from the files
    themselves).

    Raises:
        NoOverlapError: a later date does not overlap the first.
        CRSMismatchError: one date has a CRS and another has none.
    """
    grid = RasterGrid.from_path(paths[0])
    names = []
    for p in paths:
        with rasterio.open(p) as ds:
            names.append(band_names(ds))
    target = model_grid(card, grid) if resample else None
    if resample and target is None:
        fb.info(
            "Resampling asked, but the raster is already on the model's pixel size (or the model "
            "card records none in metres): classified as it is."
        )
    if target is None:
        for p in paths[1:]:
            g = RasterGrid.from_path(p)
            if not grid.same_as(g):
                msg = (
                    f"{p.name} is not on the pixel grid of {paths[0].name} ({grid.describe_difference(g)}): "
                    "it is resampled onto that grid (bilinear) as it is read."
                )
                if warnings is not None:
                    warnings.append(msg)
                else:
                    fb.warning(msg)
        return [stack.enter_context(aligned(p, grid, Resampling.bilinear)) for p in paths], names, grid
    rs = Resampling.average if target.pixel_size[0] > grid.pixel_size[0] else Resampling.bilinear
    fb.info(
        f"Resampling the input from {grid.pixel_size[0]:.6g} to {target.pixel_size[0]:.6g} "
        f"CRS units per pixel ({rs.name}) to match the model; outputs are "
        f"{target.width} x {target.height} px."
    )
    return [stack.enter_context(aligned(p, target, rs)) for p in paths], names, target


def input_shape(card: ModelCard, sources: list[BandSource], tile: int) -> tuple[int, ...]:
    """Shape of one model input tile without the batch axis: ``(T, C, tile, tile)`` or ``(C, tile, tile)``."""
    channels = [len(s.bands) for s in sources]
    n_idx = len(card.indices)
    if card.layout == "BTCHW":
        return len(sources), channels[0] + n_idx, tile, tile
    return sum(channels) + n_idx * len({s.date for s in sources}), tile, tile


def tile_params(
    sess, card: ModelCard, tile_size: int | None, overlap: int | None, warnings: list[str]
) -> tuple[int, int]:
    """Tile size and overlap (pixels) from the arguments, the card, and a fixed model input size."""
    tile = int(tile_size) if tile_size and tile_size > 0 else int(card.tile_size)
    fixed = sess.get_inputs()[0].shape[-1]
    if isinstance(fixed, int) and fixed > 0 and fixed != tile:
        if tile_size:
            warnings.append(f"The model only accepts {fixed} px tiles; tile size {tile_size} replaced by {fixed}.")
        tile = fixed
    if overlap is None or overlap < 0:
        ov = int(round(card.overlap * tile / card.tile_size)) if card.tile_size else tile // 4
    else:
        ov = int(overlap)
    if tile < 8:
        raise InputError(f"Tile size {tile} px is too small; use at least 64 px (the model's is {card.tile_size}).")
    if not 0 <= ov < tile:
        raise InputError(f"Overlap {ov} px must be smaller than the tile size {tile} px; use about a quarter of it.")
    return tile, ov
