"""core.inference.batch.worker: one task run outside Dask (whole raster, blocks with halos, bad and empty input)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from deeplandcover.core.inference.batch.plan import BatchTask, plan_tasks
from deeplandcover.core.inference.batch.resume import is_finished, sidecar_path, task_fingerprint
from deeplandcover.core.inference.batch.worker import TaskContext, run_task
from deeplandcover.core.inference.engine import classify_pixels
from deeplandcover.core.inference.options import ClassifyOptions

from ...helpers.onnx_models import make_model, smooth_image
from ...helpers.rasters import make_raster

BANDS = ["blue", "green", "red", "nir"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 4-band 90 x 130 px raster, a conv model for it (tile 32, overlap 8) and its whole-raster classes."""
    d = tmp_path_factory.mktemp("worker")
    image = smooth_image(4, 90, 130, seed=4)
    raster = make_raster(d / "scene.tif", image, descriptions=BANDS)
    model = make_model(d / "m.onnx", BANDS, 3, layers=3, seed=4, balance_on=image, tile_size=32, overlap=8)
    whole = classify_pixels([raster], model, d / "whole.tif", ClassifyOptions(threads=1)).output
    with rasterio.open(whole) as ds:
        return raster, model, ds.read(1)


def _ctx(model: Path) -> TaskContext:
    return TaskContext(str(model), ClassifyOptions(threads=1, device="cpu"), {}, {}, None)


def test_whole_raster_task_writes_the_output_then_its_sidecar(scene, tmp_path):
    raster, model, whole = scene
    (task,) = plan_tasks([(raster,)], tmp_path, None, 32, 8)
    fp = task_fingerprint(task, "sha", {"tile": 32})
    res = run_task(task, _ctx(model), fp)
    assert res["error"] is None and res["empty"] is False and res["output"] == task.output
    with rasterio.open(task.output) as ds:
        np.testing.assert_array_equal(ds.read(1), whole)
    assert is_finished(task, fp) is True
    side = json.loads(sidecar_path(task.output).read_text(encoding="utf-8"))
    assert side["threads"] == 1 and side["device"] == "cpu" and side["empty"] is False


def test_block_tasks_crop_their_halo_and_tile_the_whole_result(scene, tmp_path):
    raster, model, whole = scene
    tasks = plan_tasks([(raster,)], tmp_path, 40, 32, 8)
    assert len(tasks) == 3 * 4
    for task in tasks:
        assert run_task(task, _ctx(model), task_fingerprint(task, "sha", {}))["error"] is None
        c, r, w, h = task.block
        with rasterio.open(task.output) as ds:
            assert (ds.width, ds.height) == (w, h)
            np.testing.assert_array_equal(ds.read(1), whole[r : r + h, c : c + w])
    assert not list(tmp_path.glob(".*"))  # no halo or temporary file left


def test_bad_input_is_reported_not_raised_and_empty_input_is_finished(scene, tmp_path):
    raster, model, _ = scene
    bad = make_raster(tmp_path / "bad.tif", np.ones((3, 40, 40), np.uint16))  # 3 unnamed bands for a 4-band model
    task = BatchTask("bad_class", (str(bad),), str(tmp_path / "bad_class.tif"))
    res = run_task(task, _ctx(model), {})  # a DeepLandCoverError: reported, not worth a retry
    assert "3 bands" in res["error"] and not Path(task.output).exists() and not sidecar_path(task.output).exists()
    empty = make_raster(tmp_path / "empty.tif", np.zeros((4, 40, 40), np.uint16), nodata=0, descriptions=BANDS)
    task = BatchTask("empty_class", (str(empty),), str(tmp_path / "empty_class.tif"))
    res = run_task(task, _ctx(model), {"x": 1})
    assert res["error"] is None and res["empty"] is True and not Path(task.output).exists()
    assert is_finished(task, {"x": 1}) is None
