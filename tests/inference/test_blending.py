"""core.inference.blending: the streamed blender equals a whole-array weighted average; the blend weights."""

from __future__ import annotations

import numpy as np
import pytest

from deeplandcover.core.inference.blending import TileBlender, blend_weights, row_groups, visiting_order
from deeplandcover.core.raster.tiling import TileGrid, tile_offsets


@pytest.mark.parametrize(
    "width,height,tile,stride,blending",
    [
        (100, 90, 32, 24, "gaussian"),  # edge-snapped last row and column
        (96, 96, 32, 32, "gaussian"),  # no overlap
        (70, 20, 32, 20, "center"),  # raster lower than a tile
        (50, 130, 16, 10, "center"),
    ],
)
def test_blender_equals_whole_array_average(width, height, tile, stride, blending):
    rng = np.random.default_rng(0)
    k = 3
    grid = TileGrid(width, height, tile, tile - stride)
    slots, spans = visiting_order(grid)
    weights = blend_weights(grid, blending)
    wy, wx = weights.rows, weights.cols
    acc, wsum = np.zeros((k, height, width)), np.zeros((height, width))
    blender = TileBlender(k, grid, spans)
    out_acc, out_w = np.full((k, height, width), np.nan), np.full((height, width), np.nan)
    covered = np.zeros((height, width), int)
    for s in slots:
        p = rng.random((k, s.h, s.w)).astype(np.float32)
        w = wy[s.row][: s.h, None] * wx[s.col][None, : s.w]
        acc[:, s.row : s.row + s.h, s.col : s.col + s.w] += p * w
        wsum[s.row : s.row + s.h, s.col : s.col + s.w] += w
        for c in blender.add(s, p, w, np.ones((s.h, s.w), bool)):
            h, ww = c.wsum.shape
            out_acc[:, c.row : c.row + h, c.col : c.col + ww] = c.acc
            out_w[c.row : c.row + h, c.col : c.col + ww] = c.wsum
            covered[c.row : c.row + h, c.col : c.col + ww] += 1
    assert (covered == 1).all(), "every pixel is handed out exactly once"
    assert (wsum > 0).all()
    np.testing.assert_allclose(out_w, wsum, rtol=1e-5)
    np.testing.assert_allclose(out_acc / out_w, acc / wsum, rtol=1e-4, atol=1e-5)
    assert blender.carry.shape[1] <= max(tile - stride, 1)  # carry never taller than the overlap


def test_row_groups_merge_only_the_snapped_row():
    ys = tile_offsets(100, 32, 24)  # 0, 24, 48, 68 (snapped)
    assert ys == [0, 24, 48, 68]
    assert row_groups(ys, 32) == [[0], [1], [2, 3]]
    assert row_groups([0], 32) == [[0]]


def test_center_weights_partition_each_axis():
    for length, tile, stride in [(256, 64, 48), (100, 64, 48), (300, 64, 40), (50, 64, 48)]:
        ws = blend_weights(TileGrid(length, 1, tile, tile - stride), "center").cols
        total = np.zeros(length)
        for off, w in ws.items():
            total[off : off + len(w)] += w
        assert np.array_equal(total, np.ones(length))


def test_gaussian_weights_positive_and_cross_fade():
    ws = list(blend_weights(TileGrid(256, 1, 64, 16), "gaussian").cols.values())
    assert all((w > 0).all() for w in ws)
    w = ws[0]
    assert w[32] == 1.0 and w[0] < 1e-3 and abs(w[55] - w[8]) < 1e-6  # symmetric, ~0 at the edge
