"""core.inference.batch.run (classify_batch: Dask-distributed batch inference) and the classifybatch algorithm.

One 2-worker LocalCluster (processes) serves the module; real Sentinel-2 rasters from the sample data (DLC_DATA),
prepared by the fixtures of this package's ``conftest.py``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from deeplandcover.core.errors import CanceledError
from deeplandcover.core.inference.batch import run as batch
from deeplandcover.core.inference.batch.run import BatchOptions
from deeplandcover.core.inference.engine import classify_pixels
from deeplandcover.core.inference.options import ClassifyOptions
from deeplandcover.core.raster.io import build_vrt, write_vrt

from ...helpers.batch import FaultPlugin


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


def _same_raster(a: Path, b: Path) -> None:
    """Pixels, georeferencing, nodata and colour table identical."""
    with rasterio.open(a) as x, rasterio.open(b) as y:
        assert (x.crs, x.transform, x.width, x.height, x.nodata) == (y.crs, y.transform, y.width, y.height, y.nodata)
        assert x.colormap(1) == y.colormap(1)
        np.testing.assert_array_equal(x.read(), y.read())


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


# ------------------------------------------------------------------------------- algorithm


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
