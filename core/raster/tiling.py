"""Tile windows: where chips and inference tiles start, and disjoint windows for streaming passes.

All offsets and sizes are in pixels of the raster they refer to; windows are :class:`rasterio.windows.Window`.
The one place where Export Training Tiles and Classify Pixels get their tiling, so that a model sees at
inference exactly the tiles it was trained on.
"""

from __future__ import annotations

from rasterio.windows import Window

from ..errors import InputError


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


def tile_windows(width: int, height: int, tile_size: int, stride: int, cover_edges: bool = True) -> list[Window]:
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


def disjoint_windows(width: int, height: int, size: int) -> list[Window]:
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


def expand_window(window: Window, halo: int, width: int, height: int) -> Window:
    """``window`` grown by ``halo`` pixels on every side, clipped to a ``width`` x ``height`` raster.

    Used where a neighbourhood operation (dilation, erosion, sieving) must see pixels beyond a
    window so that its result inside the window equals the whole-raster result.

    Args:
        window: integer window (pixels).
        halo: margin in pixels (0 returns the window's integer bounds unchanged).
        width, height: raster size in pixels.

    Returns:
        The expanded window; crop ``window`` back out of it at ``(row_off - big.row_off,
        col_off - big.col_off)``.
    """
    c0, r0 = max(0, int(window.col_off) - halo), max(0, int(window.row_off) - halo)
    c1 = min(width, int(window.col_off + window.width) + halo)
    r1 = min(height, int(window.row_off + window.height) + halo)
    return Window(c0, r0, c1 - c0, r1 - r0)
