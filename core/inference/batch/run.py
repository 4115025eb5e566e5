"""Batch inference over many rasters, or over large blocks of one mosaic, scheduled with Dask distributed.

The units of work are the :class:`core.inference.batch.plan.BatchTask` s (whole rasters, or seamless
blocks with their halos); each is classified by :func:`core.inference.engine.classify_pixels` with the
run's :class:`core.inference.options.ClassifyOptions`.

Tasks run on a Dask ``LocalCluster`` (one single-threaded worker process per core, or per GPU when
ONNX Runtime offers CUDA; each task gets ``cores / workers`` ONNX Runtime threads) or on an existing
cluster given by its scheduler address (:mod:`core.inference.batch.cluster`). Every task writes its own
tiled GeoTIFF and then a JSON sidecar, so a re-run skips finished tasks (:mod:`core.inference.batch.resume`).
A task that raises an unexpected error (I/O, a killed worker) is retried by Dask; errors of the inputs
themselves (:class:`core.errors.DeepLandCoverError`) are not retried. Failures are reported in
:attr:`BatchResult.failed`, never as a crash of the whole run. At the end a VRT ties the outputs together
(:func:`core.raster.io.build_vrt`).

Command line (no QGIS needed): ``python -m deeplandcover.core.inference.batch`` (:mod:`.__main__`).
Never imports qgis or torch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rasterio

from ...errors import CanceledError, InputError
from ...feedback import Feedback, ensure_feedback
from ...provenance import file_sha256
from ...raster.io import build_vrt
from ..model import load_model
from ..options import ClassifyOptions
from .cluster import open_client, worker_layout
from .plan import BatchTask, expand_inputs, plan_tasks, task_bounds
from .resume import (
    is_finished,
    output_settings,
    remove_stale,
    sidecar_path,
    task_fingerprint,
)
from .worker import TaskContext, run_task


@dataclass(frozen=True)
class BatchOptions:
    """How :func:`classify_batch` schedules and names its work (how each raster is classified is a
    :class:`ClassifyOptions`).

    Attributes:
        scheduler: Dask scheduler address (``tcp://host:8786``) or a ``distributed.Client``; None starts a
            ``LocalCluster`` for this run.
        n_workers: local workers (None/0: one per GPU with onnxruntime-gpu, else one per core).
        block_size: block edge in pixels for block mode (classify each raster in seamless blocks); None/0
            classifies whole rasters, one task each.
        overwrite: recompute finished outputs too.
        pattern: file pattern for folders in the inputs.
        retries: Dask retries of a task that raised an unexpected error (a killed worker's task is
            rescheduled by Dask itself).
        vrt_name: file stem of the VRT mosaic.
    """

    scheduler: Any = None
    n_workers: int | None = None
    block_size: int | None = None
    overwrite: bool = False
    pattern: str = "*.tif"
    retries: int = 2
    vrt_name: str = "classified"


@dataclass(frozen=True)
class BatchFailure:
    """A task that failed after its retries: its name, inputs and the error message."""

    name: str
    inputs: tuple[str, ...]
    error: str


@dataclass
class BatchResult:
    """What :func:`classify_batch` did.

    Attributes:
        outputs: class GeoTIFFs that exist at the end (computed now or skipped as finished), task order.
        vrt: the VRT mosaic of ``outputs`` (None when there is no output or their CRSs differ).
        computed: outputs computed in this run.
        skipped: outputs found finished and not recomputed.
        empty: names of tasks whose area held no valid pixel (no GeoTIFF written; a VRT gap reads nodata).
        failed: tasks that failed after their retries.
        seconds: wall-clock time of the whole run, including cluster start-up.
        n_workers: Dask workers that ran the tasks.
        warnings: warnings of the run.
    """

    outputs: list[Path]
    vrt: Path | None
    computed: list[Path]
    skipped: list[Path]
    empty: list[str]
    failed: list[BatchFailure]
    seconds: float
    n_workers: int
    warnings: list[str] = field(default_factory=list)


def classify_batch(
    inputs: str | os.PathLike | Sequence[Any],
    model: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: BatchOptions | None = None,
    classify: ClassifyOptions | None = None,
    *,
    feedback: Feedback | None = None,
) -> BatchResult:
    """Classify many rasters (or the blocks of a mosaic) in parallel with Dask distributed.

    Args:
        inputs: folder, glob, raster/VRT file, or a list of them (inner tuples = one multi-date input);
            see :func:`core.inference.batch.plan.expand_inputs`.
        model: ``.onnx`` model with its card (or a STAC Item or catalogue name, see
            :func:`core.inference.model.load_model`); must be readable at the same path on every worker.
        out_dir: output folder: ``<stem>_class.tif`` (+ ``.qml``, ``.json`` sidecar) per raster or block,
            and ``<vrt_name>.vrt`` (+ ``.qml``) over all of them.
        options: scheduling, blocks, resuming (:class:`BatchOptions`; None: its defaults).
        classify: how every raster or block is classified (:class:`ClassifyOptions`; None: its defaults).
            ``threads`` 0 means cores / workers per task; ``extent`` is set per task and must be None;
            ``resample`` is not supported.
        feedback: progress (finished tasks), cancel (cancels the tasks, stops the cluster) and log.

    Returns:
        :class:`BatchResult`.

    Raises:
        InputError: no inputs, colliding names, an extent or resampling asked, a block smaller than a tile,
            an unreachable scheduler.
        ModelFileError: the model cannot be read.
        CanceledError: canceled; finished outputs stay (a re-run resumes), no partial file is left.
    """
    t0 = time.perf_counter()
    opts = options if options is not None else BatchOptions()
    run = classify if classify is not None else ClassifyOptions()
    fb = ensure_feedback(feedback)
    _check_classify_options(run)
    out = Path(out_dir).resolve()
    groups = expand_inputs(inputs, opts.pattern)
    loaded = load_model(model, "cpu", 1, run.input_scale, feedback=fb)  # a file, STAC Item or catalogue name
    model = loaded.path.resolve()
    tile, overlap = loaded.tiling(run.tile_size, run.overlap, [])  # as classify_pixels resolves them
    tasks = plan_tasks(groups, out, opts.block_size, tile, overlap)
    out.mkdir(parents=True, exist_ok=True)
    settings = output_settings(run, tile, overlap)
    model_sha = file_sha256(model)
    prints = {t.name: task_fingerprint(t, model_sha, settings) for t in tasks}
    state = {t.name: (False if opts.overwrite else is_finished(t, prints[t.name])) for t in tasks}
    todo = [t for t in tasks if state[t.name] is False]
    skipped = [Path(t.output) for t in tasks if state[t.name] is True]
    empty = [t.name for t in tasks if state[t.name] is None]
    mode = f"blocks of {opts.block_size} px" if opts.block_size else "whole rasters"
    fb.info(
        f"{len(tasks)} task(s) over {len(groups)} input(s) ({mode}, tile {tile} px, overlap {overlap} px): "
        f"{len(todo)} to run, {len(tasks) - len(todo)} already finished."
    )
    done = _Outcome(skipped=skipped, empty=empty)
    if todo:
        done.computed, done.failed, empties, done.n_workers = _run_on_cluster(todo, str(model), run, prints, opts, fb)
        done.empty += empties
    return _finish(tasks, done, out, opts.vrt_name, t0, fb)


def _check_classify_options(run: ClassifyOptions) -> None:
    """Refuse the options that the batch runner sets itself or cannot honour.

    Raises:
        InputError: an extent, or resampling.
    """
    if run.extent is not None:
        raise InputError(
            "classify_batch sets the extent of every task itself; leave the extent empty (mask the "
            "area with mask polygons instead)."
        )
    if run.resample:
        raise InputError(
            "classify_batch plans its blocks on the input rasters' grid and cannot resample them; warp "
            "the rasters to the model's pixel size first (gdalwarp -tr), or use Classify Pixels with "
            "RESAMPLE for one raster."
        )


def _run_on_cluster(
    todo: list[BatchTask], model: str, run: ClassifyOptions, prints: dict[str, dict], opts: BatchOptions, fb: Feedback
) -> tuple[list[Path], list[BatchFailure], list[str], int]:
    """Run the unfinished tasks on the cluster: (computed outputs, failures, empty task names, workers)."""
    for t in todo:
        remove_stale(t)
        sidecar_path(t.output).unlink(missing_ok=True)
    with open_client(opts.scheduler, opts.n_workers) as client:
        threads, gpus, n_run = worker_layout(client)
        fb.info(
            f"Dask: {n_run} worker(s) at {client.scheduler.address}; ONNX Runtime threads per task "
            f"{sorted(set(threads.values()))}{'; GPUs ' + str(sorted(set(gpus.values()))) if gpus else ''}."
        )
        ctx = TaskContext(model, run, threads, gpus, f"dlc-cancel-{uuid.uuid4().hex}")
        computed, failed, empties = _run_tasks(client, todo, ctx, prints, opts.retries, fb)
    return computed, failed, empties, n_run


def _run_tasks(
    client: Any, todo: list[BatchTask], ctx: TaskContext, prints: dict[str, dict], retries: int, fb: Feedback
) -> tuple[list[Path], list[BatchFailure], list[str]]:
    """Submit the tasks, collect them as they complete (progress, cancel); never raises for a task's failure."""
    from distributed import Event, as_completed

    futures = {
        client.submit(
            run_task, t, ctx, prints[t.name], retries=retries, pure=False, key=f"dlc-{t.name}-{uuid.uuid4().hex[:8]}"
        ): t
        for t in todo
    }
    computed: list[Path] = []
    failed: list[BatchFailure] = []
    empties: list[str] = []
    ac = as_completed(list(futures))
    n = 0
    while not ac.is_empty():
        for fut in ac.next_batch(block=False):
            task = futures[fut]
            n += 1
            if fut.status == "finished":
                res = fut.result()
                if res["error"]:
                    failed.append(BatchFailure(task.name, task.inputs, res["error"]))
                elif res["empty"]:
                    empties.append(task.name)
                else:
                    computed.append(Path(task.output))
            else:
                err = fut.exception() if fut.status == "error" else fut.status
                failed.append(BatchFailure(task.name, task.inputs, f"{type(err).__name__}: {err}"))
            fb.set_progress(99.0 * n / len(futures))
        if fb.is_canceled():
            with contextlib.suppress(Exception):
                Event(ctx.cancel_event, client=client).set()
            client.cancel(list(futures))
            raise CanceledError("Batch classification canceled; finished outputs are kept and a re-run resumes.")
        if not ac.is_empty():
            time.sleep(0.1)
    return computed, failed, empties


@dataclass
class _Outcome:
    """What became of the tasks of one run, before :func:`_finish` puts it in task order.

    Attributes:
        computed: outputs computed now. skipped: outputs found finished. empty: names of tasks with no
        valid pixel. failed: tasks that failed after their retries. n_workers: Dask workers that ran them.
    """

    computed: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    failed: list[BatchFailure] = field(default_factory=list)
    n_workers: int = 0


def _finish(tasks: list[BatchTask], done: _Outcome, out: Path, vrt_name: str, t0: float, fb: Feedback) -> BatchResult:
    """Put the results in task order, report the failures, build the VRT mosaic."""
    order = {Path(t.output): i for i, t in enumerate(tasks)}
    rank = {t.name: i for i, t in enumerate(tasks)}
    computed = sorted(done.computed, key=order.__getitem__)
    skipped, n_run = done.skipped, done.n_workers
    empty = sorted(done.empty, key=rank.__getitem__)
    failed = sorted(done.failed, key=lambda f: rank[f.name])
    outputs = sorted(set(computed) | set(skipped), key=order.__getitem__)
    warnings: list[str] = []
    for f in failed:
        fb.warning(f"Task {f.name} failed: {f.error}")
    if failed:
        warnings.append(f"{len(failed)} task(s) failed; the VRT has gaps there. Re-run to retry only them.")
    vrt = _mosaic(outputs, tasks, out, vrt_name, warnings, fb)
    seconds = time.perf_counter() - t0
    fb.set_progress(100.0)
    fb.info(
        f"Batch done in {seconds:.1f} s: {len(computed)} computed, {len(skipped)} skipped, {len(empty)} empty, "
        f"{len(failed)} failed."
    )
    return BatchResult(outputs, vrt, computed, skipped, empty, failed, seconds, n_run, warnings)


def _mosaic(
    outputs: list[Path], tasks: list[BatchTask], out_dir: Path, name: str, warnings: list[str], fb: Feedback
) -> Path | None:
    """The VRT ``<name>.vrt`` over ``outputs`` (with the first output's style), or None (no output, several CRSs)."""
    if not outputs:
        return None
    crs = set()
    for p in outputs:
        with rasterio.open(p) as ds:
            crs.add(ds.crs.to_wkt() if ds.crs else "")
    if len(crs) > 1:
        msg = (
            f"The outputs are in {len(crs)} different CRSs, so no VRT mosaic was built; "
            "open the GeoTIFFs individually or reproject the inputs to one CRS."
        )
        warnings.append(msg)
        fb.warning(msg)
        return None
    vrt = build_vrt(outputs, out_dir / f"{name}.vrt", task_bounds(tasks))
    qml = outputs[0].with_suffix(".qml")
    if qml.is_file():
        shutil.copyfile(qml, vrt.with_suffix(".qml"))
    return vrt
