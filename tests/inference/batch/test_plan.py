"""core.inference.batch.plan: the input sets, the blocks with their halos and the tiles each block needs."""

from __future__ import annotations

import numpy as np
import pytest

from deeplandcover.core.errors import InputError
from deeplandcover.core.inference.batch import plan as batch_plan
from deeplandcover.core.inference.batch import run as batch
from deeplandcover.core.inference.batch.run import BatchOptions
from deeplandcover.core.inference.blending import blend_weights
from deeplandcover.core.inference.options import ClassifyOptions
from deeplandcover.core.raster.tiling import TileGrid


def _contributions(offs: list[int], weights: list[np.ndarray], n: int, p: int, shift: int = 0) -> list:
    return [(o + shift, float(w[p - o - shift])) for o, w in zip(offs, weights) if o + shift <= p < o + shift + n]


@pytest.mark.parametrize("blending", ["gaussian", "center"])
@pytest.mark.parametrize(
    "length,tile,overlap",
    [(300, 64, 16), (101, 64, 16), (500, 128, 32), (97, 32, 0), (64, 64, 8), (250, 64, 1), (40, 64, 16)],
)
def test_axis_span_gives_each_block_pixel_the_whole_raster_tiles_and_weights(length, tile, overlap, blending):
    n = min(tile, length)
    grid = TileGrid(length, 1, tile, overlap)
    offs, ws = grid.cols, list(blend_weights(grid, blending).cols.values())
    for block in (7, 50, 70, 128):
        for a in range(0, length, block):
            b = min(a + block, length)
            start, end = batch_plan.axis_span(grid.cols, grid.tile_w, length, a, b)
            assert 0 <= start <= a < b <= end <= length
            sub = TileGrid(end - start, 1, tile, overlap)
            sub_offs, sub_ws = sub.cols, list(blend_weights(sub, blending).cols.values())
            for p in range(a, b):
                want = [c for c in _contributions(offs, ws, n, p) if c[1] > 0 or blending == "gaussian"]
                got = [
                    c
                    for c in _contributions(sub_offs, sub_ws, min(tile, end - start), p, start)
                    if c[1] > 0 or blending == "gaussian"
                ]
                assert got == want, (a, b, p, start, end)


def test_plan_tasks_blocks_partition_the_grid(mosaic, tmp_path):
    _, vrt, _ = mosaic
    tasks = batch_plan.plan_tasks(batch_plan.expand_inputs(vrt), tmp_path, 70, 64, 16)
    assert len(tasks) == 5 * 3
    cover = np.zeros((200, 300), int)
    for t in tasks:
        c, r, w, h = t.block
        hc, hr, hw, hh = t.halo
        assert hc <= c and hr <= r and c + w <= hc + hw and r + h <= hr + hh
        cover[r : r + h, c : c + w] += 1
    assert (cover == 1).all()
    assert tasks[0].name == "mosaic_class_0_0" and tasks[-1].name == "mosaic_class_2_4"


def test_expand_inputs_and_bad_arguments(mosaic, series, tmp_path):
    parts, vrt, model = mosaic
    assert [g[0].name for g in batch_plan.expand_inputs(parts[0].parent)] == [p.name for p in parts]
    assert len(batch_plan.expand_inputs(str(parts[0].parent / "part_1_*.tif"))) == 2
    assert batch_plan.expand_inputs([tuple(series[0][:2])])[0] == tuple(p.resolve() for p in series[0][:2])
    with pytest.raises(InputError, match="No input rasters"):
        batch_plan.expand_inputs(tmp_path)
    with pytest.raises(InputError, match="neither a raster"):
        batch_plan.expand_inputs(tmp_path / "nothing.tif")
    with pytest.raises(InputError, match="sets"):
        batch.classify_batch(vrt, model, tmp_path, BatchOptions(), ClassifyOptions(extent=(0, 0, 1, 1)))
    with pytest.raises(InputError, match="cannot resample"):
        batch.classify_batch(vrt, model, tmp_path, BatchOptions(), ClassifyOptions(resample=True))
    with pytest.raises(InputError, match="smaller than the tile size"):
        batch.classify_batch(vrt, model, tmp_path, BatchOptions(block_size=32))
    with pytest.raises(InputError, match="collide"):
        batch_plan.plan_tasks([(parts[0],), (tmp_path / "x" / parts[0].name,)], tmp_path, None, 64, 16)
