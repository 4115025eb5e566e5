"""core.raster.tiling: the TileGrid of inference (computed once), tile offsets and windows, disjoint blocks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from rasterio.windows import Window

from deeplandcover.core.errors import InputError
from deeplandcover.core.raster import tiling as T
from deeplandcover.core.raster.tiling import TileGrid, tile_windows

GRIDS = [(300, 200, 64, 16), (256, 256, 64, 0), (101, 97, 32, 8), (64, 64, 64, 8), (500, 130, 128, 100)]


@pytest.mark.parametrize(("width", "height", "tile", "overlap"), GRIDS)
def test_tiles_cover_the_raster_and_stay_inside(width, height, tile, overlap):
    grid = TileGrid(width, height, tile, overlap)
    hits = np.zeros((height, width), int)
    for w in grid.windows():
        assert w.col_off >= 0 and w.row_off >= 0
        assert w.col_off + w.width <= width and w.row_off + w.height <= height
        hits[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
    assert (hits >= 1).all()
    assert len(grid) == len(grid.windows()) == len(grid.rows) * len(grid.cols)


@pytest.mark.parametrize(("width", "height", "tile", "overlap"), GRIDS)
def test_last_tile_is_flush_with_the_edge(width, height, tile, overlap):
    grid = TileGrid(width, height, tile, overlap)
    assert grid.rows[0] == grid.cols[0] == 0
    assert grid.rows[-1] + grid.tile_h == height
    assert grid.cols[-1] + grid.tile_w == width


@pytest.mark.parametrize(("width", "height", "tile", "overlap"), GRIDS)
def test_neighbours_share_at_least_the_overlap(width, height, tile, overlap):
    grid = TileGrid(width, height, tile, overlap)
    assert grid.stride == tile - overlap
    for offs in (grid.rows, grid.cols):
        steps = np.diff(offs)
        assert (steps[:-1] == grid.stride).all()  # regular tiles step by the stride
        assert (steps > 0).all() and (steps <= grid.stride).all()  # the snapped last one overlaps more
        assert all(tile - s >= overlap for s in steps)


def test_same_tiles_as_tile_windows():
    for width, height, tile, overlap in GRIDS:
        grid = TileGrid(width, height, tile, overlap)
        assert grid.windows() == tile_windows(width, height, tile, tile - overlap, cover_edges=True)


def test_raster_smaller_than_a_tile_is_one_tile_of_its_size():
    grid = TileGrid(10, 5, 64, 16)
    assert grid.rows == grid.cols == (0,)
    assert (grid.tile_w, grid.tile_h) == (10, 5)
    assert grid.windows() == [Window(0, 0, 10, 5)]
    narrow = TileGrid(300, 20, 64, 16)  # smaller than a tile along one axis only
    assert narrow.rows == (0,) and narrow.tile_h == 20 and narrow.cols[-1] + 64 == 300


def test_frozen_and_compared_by_its_four_numbers():
    grid = TileGrid(100, 90, 32, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        grid.tile_px = 64
    with pytest.raises(dataclasses.FrozenInstanceError):
        grid.rows = (0,)
    assert grid == TileGrid(100, 90, 32, 8) and hash(grid) == hash(TileGrid(100, 90, 32, 8))
    assert grid != TileGrid(100, 90, 32, 16)
    assert "rows" not in repr(grid)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((100, 100, 32, 32), "smaller than the tile size"),
        ((100, 100, 32, -1), "at least 0"),
        ((100, 100, 0, 0), "positive"),
        ((0, 100, 32, 8), "at least 1 x 1"),
    ],
)
def test_bad_grids_are_refused_with_a_clear_message(args, match):
    with pytest.raises(InputError, match=match):
        TileGrid(*args)


@pytest.mark.parametrize(
    "length,tile,stride,cover,expected",
    [
        (10, 4, 2, False, [0, 2, 4, 6]),
        (11, 4, 2, False, [0, 2, 4, 6]),
        (11, 4, 2, True, [0, 2, 4, 6, 7]),
        (3, 4, 2, True, [0]),
        (256, 256, 128, True, [0]),
    ],
)
def test_tile_offsets(length, tile, stride, cover, expected):
    assert T.tile_offsets(length, tile, stride, cover) == expected


def test_tile_windows_cover_every_pixel_once_or_more():
    wins = T.tile_windows(37, 23, 8, 6, cover_edges=True)
    cover = np.zeros((23, 37), int)
    for w in wins:
        cover[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
        assert (w.width, w.height) == (8, 8)
    assert cover.min() >= 1


def test_export_grid_arithmetic_matches_arcgis():
    # ArcGIS: (W - tile) // stride + 1 chips per axis, only full tiles
    wins = T.tile_windows(1536, 768, 256, 128, cover_edges=False)
    assert len(wins) == ((1536 - 256) // 128 + 1) * ((768 - 256) // 128 + 1)


@pytest.mark.parametrize("tile,stride", [(0, 1), (4, 0), (4, -2)])
def test_bad_tile_or_stride(tile, stride):
    with pytest.raises(InputError):
        T.tile_offsets(10, tile, stride)


def test_block_windows_cover_each_pixel_exactly_once():
    cover = np.zeros((23, 37), int)
    for w in T.disjoint_windows(37, 23, 8):
        cover[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
    assert (cover == 1).all()
