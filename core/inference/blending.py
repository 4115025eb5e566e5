"""Seamless blending of overlapping tile predictions into row-major finished chunks, in bounded memory.

Used by :mod:`core.inference.engine`. Tiles come from one :class:`core.raster.tiling.TileGrid`;
the engine visits them *group by group* (a group is normally one tile row; the last, edge-snapped row
joins the row above it), and inside a group *column by column*. After the tiles of one column of a
group, every pixel left of the next column's start is final for the rows of that group:

- rows above the next group's first row are normalised and handed out as a finished chunk;
- rows shared with the next group (the vertical overlap) go into a *carry* buffer, added back when
  the next group finalises the same columns.

Memory: a working buffer of ``K x group height x tile`` plus one carry buffer of
``(K + 1) x overlap x width`` (float32), so it grows neither with the raster height nor, much, with its
width. Weights follow :func:`blend_weights`; overlapping predictions are averaged with them
(the overlapping-patch inference of "Deep Neural Networks for Automatic Extraction of Features in Time Series
Optical Satellite Images", Int. Arch. Photogramm. Remote Sens. Spatial Inf. Sci., XLIII-B2-2020, 1529-1535,
2020; ArcGIS's ``padding`` is the ``"center"`` mode).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import InputError
from ..raster.tiling import TileGrid

Blending = Literal["gaussian", "center"]


def _axis_weights(offs: Sequence[int], length: int, tile: int, overlap: int, blending: Blending) -> list[np.ndarray]:
    """1-D blending weights ``(min(tile, length),) float32`` for each tile offset ``offs`` along one axis.

    ``"gaussian"``: 1 on the tile's core (farther than ``overlap`` from its edges), Gaussian tails
    ``exp(-e^2 / (2 sigma^2))`` over the overlap (``e``: distance into the overlap, ``sigma = overlap / 4``),
    so neighbours cross-fade where they overlap, border pixels (whose receptive field sees the zero
    padding) get ~1e-3 of a neighbour's weight, and no weight is ever zero (edge tiles keep their border
    pixels). ``overlap == 0`` gives flat weights. ``"center"``: 1 inside the tile's centre region, 0
    elsewhere; neighbouring regions meet halfway through each overlap, so every pixel comes from exactly
    one tile (ArcGIS ``padding``).

    Raises:
        InputError: unknown ``blending``.
    """
    n = min(tile, length)
    if blending == "gaussian":
        ov = overlap
        if ov <= 0:
            return [np.ones(n, np.float32) for _ in offs]
        d = np.abs(np.arange(n, dtype=np.float64) - (n - 1) / 2.0)
        e = np.maximum(d - (n / 2.0 - ov), 0.0)
        w = np.maximum(np.exp(-0.5 * (e / max(ov / 4.0, 0.5)) ** 2), 1e-6).astype(np.float32)
        return [w for _ in offs]
    if blending != "center":
        raise InputError(f"Unknown blending {blending!r}; use 'gaussian' or 'center'.")
    cuts = [0] + [(offs[j] + n + offs[j + 1]) // 2 for j in range(len(offs) - 1)] + [length]
    out = []
    for j, o in enumerate(offs):
        w = np.zeros(n, np.float32)
        w[max(cuts[j] - o, 0) : max(min(cuts[j + 1] - o, n), 0)] = 1.0
        out.append(w)
    return out


@dataclass(frozen=True)
class BlendWeights:
    """Blending weights of every tile of a :class:`TileGrid` (see :func:`blend_weights`).

    Attributes:
        rows: tile row offset (pixels) -> ``(tile_h,) float32`` weights along y.
        cols: tile column offset (pixels) -> ``(tile_w,) float32`` weights along x.
    """

    rows: dict[int, np.ndarray]
    cols: dict[int, np.ndarray]

    def of(self, slot: TileSlot) -> np.ndarray:
        """``(slot.h, slot.w) float32`` weights of one tile: the outer product of its axis weights."""
        return self.rows[slot.row][: slot.h, None] * self.cols[slot.col][None, : slot.w]


def blend_weights(grid: TileGrid, blending: Blending) -> BlendWeights:
    """The weights of each tile of ``grid``, per axis (see :func:`_axis_weights` for the two modes).

    Weights along an axis depend only on the tile's offset there, so they are kept per row and per column
    offset; a tile's 2-D weights are their outer product (:meth:`BlendWeights.of`).

    Raises:
        InputError: unknown ``blending`` (``"gaussian"`` or ``"center"``).
    """
    wy = _axis_weights(grid.rows, grid.height, grid.tile_px, grid.overlap_px, blending)
    wx = _axis_weights(grid.cols, grid.width, grid.tile_px, grid.overlap_px, blending)
    return BlendWeights(dict(zip(grid.rows, wy)), dict(zip(grid.cols, wx)))


def row_groups(ys: list[int], th: int) -> list[list[int]]:
    """Tile-row indexes grouped so that no carry between groups is taller than the regular overlap.

    Args:
        ys: tile row offsets (pixels, increasing), :attr:`core.raster.tiling.TileGrid.rows`.
        th: tile height (pixels).
    """
    regular = th - (ys[1] - ys[0]) if len(ys) > 1 else 0
    groups = [[0]]
    for i in range(1, len(ys)):
        if ys[groups[-1][-1]] + th - ys[i] > regular:  # an edge-snapped row: blend it with the row above
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


@dataclass(frozen=True)
class TileSlot:
    """One tile in visiting order.

    Attributes:
        row, col: upper-left pixel of the tile (extent pixels). ``h, w``: its size.
        group: index of its row group. ``last_in_column``: the last tile of its column in the group
        (after it, columns left of the next column are final). ``col_end``: the column up to which
        pixels are final after this tile (next column's offset, or the width).
    """

    row: int
    col: int
    h: int
    w: int
    group: int
    last_in_column: bool
    col_end: int


def visiting_order(grid: TileGrid) -> tuple[list[TileSlot], list[tuple[int, int]]]:
    """The tiles of ``grid`` in the blender's order, and each group's ``(first row, last row + 1)`` (pixels)."""
    ys, xs, width = grid.rows, grid.cols, grid.width
    th, tw = grid.tile_h, grid.tile_w
    groups = row_groups(ys, th)
    slots, spans = [], []
    for g, rows in enumerate(groups):
        spans.append((ys[rows[0]], ys[rows[-1]] + th))
        for j, x in enumerate(xs):
            end = xs[j + 1] if j + 1 < len(xs) else width
            for k, i in enumerate(rows):
                slots.append(TileSlot(ys[i], x, th, tw, g, k == len(rows) - 1, end))
    return slots, spans


@dataclass
class Chunk:
    """A finished chunk: rows ``[row, row + h)``, cols ``[col, col + w)`` of the extent.

    Attributes:
        acc: ``(K, h, w) float32`` weighted probability sums. ``wsum``: ``(h, w)`` weight sums.
        valid: ``(h, w) bool`` pixels with valid input (inside the mask).
    """

    row: int
    col: int
    acc: np.ndarray
    wsum: np.ndarray
    valid: np.ndarray


class TileBlender:
    """Accumulates tiles in :func:`visiting_order` and yields finished :class:`Chunk` s."""

    def __init__(self, k: int, grid: TileGrid, spans: list[tuple[int, int]]) -> None:
        """``k`` classes; ``grid`` the tiling; ``spans`` the row groups of :func:`visiting_order` on it."""
        self.k, self.width, self.spans = k, grid.width, spans
        self.tw = grid.tile_w
        gh = max(b - a for a, b in spans)
        carry = max([spans[g][1] - spans[g + 1][0] for g in range(len(spans) - 1)] + [1])
        self.work = np.zeros((k + 1, gh, self.tw), np.float32)  # K weighted sums + the weight sum
        self.valid = np.zeros((gh, self.tw), bool)
        self.carry = np.zeros((k + 1, carry, grid.width), np.float32)
        self.group = 0
        self.col0 = 0  # extent column of work[..., 0]

    @property
    def nbytes(self) -> int:
        """Bytes held by the working and carry buffers."""
        return self.work.nbytes + self.valid.nbytes + self.carry.nbytes

    def add(self, slot: TileSlot, probs: np.ndarray | None, weight: np.ndarray, valid: np.ndarray) -> Iterator[Chunk]:
        """Add one tile; yield finished chunks.

        Args:
            slot: the tile (in :func:`visiting_order`).
            probs: ``(K, h, w) float32`` probabilities (overwritten: scaled by ``weight``), or None for a
                skipped all-invalid tile.
            weight: ``(h, w) float32`` blending weights. ``valid``: ``(h, w) bool``.
        """
        if slot.group != self.group:
            self._next_group(slot.group)
        top = self.spans[self.group][0]
        r, c = slot.row - top, slot.col - self.col0
        self.valid[r : r + slot.h, c : c + slot.w] = valid
        if probs is not None:
            np.multiply(probs, weight, out=probs)  # probs is the engine's scratch copy: scale it in place
            self.work[:-1, r : r + slot.h, c : c + slot.w] += probs
            self.work[-1, r : r + slot.h, c : c + slot.w] += weight
        if slot.last_in_column:
            yield from self._finish_columns(slot.col_end)

    def _next_group(self, group: int) -> None:
        self.group, self.col0 = group, 0
        self.work[:] = 0
        self.valid[:] = False

    def _finish_columns(self, end: int) -> Iterator[Chunk]:
        g0, g1 = self.spans[self.group]
        n, h = end - self.col0, g1 - g0
        done = self.work[:, :h, :n].copy()
        valid = self.valid[:h, :n].copy()
        carry = self.carry[:, :, self.col0 : end]  # one buffer: these columns are read, then refilled
        if self.group > 0:
            ch = self.spans[self.group - 1][1] - g0
            done[:, :ch] += carry[:, :ch]
        last = self.group == len(self.spans) - 1
        fin = h if last else self.spans[self.group + 1][0] - g0
        if not last:
            carry[:, : h - fin] = done[:, fin:]
            carry[:, h - fin :] = 0
        self.work[:, :, : self.tw - n] = self.work[:, :, n:].copy()
        self.work[:, :, self.tw - n :] = 0
        self.valid[:, : self.tw - n] = self.valid[:, n:].copy()
        self.valid[:, self.tw - n :] = False
        col = self.col0
        self.col0 = end
        if fin > 0:
            yield Chunk(g0, col, done[:-1, :fin], done[-1, :fin], valid[:fin])
