"""Tile windows: where chips and inference tiles start, and disjoint windows for streaming passes.

All offsets and sizes are in pixels of the raster they refer to; windows are :class:`rasterio.windows.Window`.
The one place where Export Training Tiles and Classify Pixels get their tiling, so that a model sees at
inference exactly the tiles it was trained on. :class:`TileGrid` is the inference tiling of one raster
(or extent), computed once and handed to the visiting order, the blend weights, the blender and the
batch planner (after Deepness's ``TileParams``: tile size, stride and overlap in pixels in one object).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class TileGrid:
    """The inference tiling of a ``width`` x ``height`` raster: square tiles sharing ``overlap_px``, edges snapped.

    Tiles start every ``stride = tile_px - overlap_px`` pixels along each axis; a last tile is snapped flush
    with the raster's edge (:func:`tile_offsets` with ``cover_edges=True``), so every pixel is covered. A raster
    smaller than a tile along an axis gets one tile of the raster's size there (the reader mirror-pads it).
    The offsets are computed once, when the grid is made.

    Attributes:
        width, height: raster (extent) size, pixels.
        tile_px: tile edge, pixels. overlap_px: pixels shared by neighbouring tiles, ``0 <= overlap_px < tile_px``.
        rows, cols: tile start offsets along y and x (pixels, increasing; derived).

    Raises:
        InputError: a size below 1 pixel, or an overlap outside ``[0, tile_px)`` (the message says what to use).
    """

    width: int
    height: int
    tile_px: int
    overlap_px: int = 0
    rows: tuple[int, ...] = field(init=False, repr=False, compare=False)
    cols: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise InputError(f"A tile grid needs a raster of at least 1 x 1 pixels, got {self.width} x {self.height}.")
        if self.tile_px < 1:
            raise InputError(f"Tile size must be a positive number of pixels, got {self.tile_px}.")
        if not 0 <= self.overlap_px < self.tile_px:
            raise InputError(
                f"Overlap {self.overlap_px} px must be at least 0 and smaller than the tile size {self.tile_px} px; "
                "use about a quarter of it."
            )
        # frozen: the derived offsets are set once here, never again
        object.__setattr__(self, "rows", tuple(tile_offsets(self.height, self.tile_px, self.stride)))
        object.__setattr__(self, "cols", tuple(tile_offsets(self.width, self.tile_px, self.stride)))

    @property
    def stride(self) -> int:
        """Step between tile origins, pixels (``tile_px - overlap_px``)."""
        return self.tile_px - self.overlap_px

    @property
    def tile_h(self) -> int:
        """Height of every tile window, pixels (``min(tile_px, height)``)."""
        return min(self.tile_px, self.height)

    @property
    def tile_w(self) -> int:
        """Width of every tile window, pixels (``min(tile_px, width)``)."""
        return min(self.tile_px, self.width)

    def __len__(self) -> int:
        """Number of tiles."""
        return len(self.rows) * len(self.cols)

    def windows(self) -> list[Window]:
        """Row-major tile windows (the grid of :func:`tile_windows` with ``stride``, ``cover_edges=True``)."""
        return [Window(c, r, self.tile_w, self.tile_h) for r in self.rows for c in self.cols]


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
