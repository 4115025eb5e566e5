"""What runs on a Dask worker: one :class:`core.inference.batch.plan.BatchTask` classified, cropped, recorded.

:func:`run_task` is the function Dask schedules. It picks the ONNX Runtime threads and GPU of the worker
it runs on, classifies the task's raster (or the halo of its block, then crops the block out), and writes
the sidecar that marks the output finished (:mod:`core.inference.batch.resume`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
import rasterio.transform
from rasterio.windows import Window

from ...errors import DeepLandCoverError, EmptyAreaError, NoOverlapError
from ...feedback import Feedback
from ...raster.grid import RasterGrid
from ...raster.io import atomic_output, geotiff_profile
from ..options import ClassifyOptions
from .cluster import EventFeedback, host_of, worker_address
from .plan import BatchTask
from .resume import remove_stale, write_sidecar


@dataclass(frozen=True)
class TaskContext:
    """What every task needs besides its :class:`BatchTask` (sent once per task, small).

    Attributes:
        model: the ``.onnx`` file (a path every worker can read).
        options: the run's classify options (``threads`` 0 and ``device`` auto are resolved per worker).
        threads_by_host: ONNX Runtime threads per task on each worker host (cores / workers there).
        gpu_by_worker: worker address -> CUDA device number, for ``device="auto"`` on GPU workers.
        cancel_event: name of the Dask ``Event`` that asks running tasks to stop, or None.
    """

    model: str
    options: ClassifyOptions
    threads_by_host: dict[str, int]
    gpu_by_worker: dict[str, int]
    cancel_event: str | None


def _task_runtime(ctx: TaskContext) -> tuple[int, str]:
    """ONNX Runtime threads and device for a task on this worker."""
    addr = worker_address()
    threads = int(ctx.options.threads or 0)
    if threads <= 0:
        threads = ctx.threads_by_host.get(host_of(addr), 1) if addr else 0
    device = str(ctx.options.device or "auto")
    if device == "auto" and addr in ctx.gpu_by_worker:
        device = f"cuda:{ctx.gpu_by_worker[addr]}"
    return threads, device


def _bounds(grid: RasterGrid, win: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    """Bounds of a pixel window, pulled 1/1000 pixel inwards so that rounding back gives the same window."""
    c, r, w, h = win
    tr = grid.transform
    x0, y0 = rasterio.transform.xy(tr, r + 1e-3, c + 1e-3, offset="ul")
    x1, y1 = rasterio.transform.xy(tr, r + h - 1e-3, c + w - 1e-3, offset="ul")
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _crop(src_path: Path, dst_path: Path, offset: tuple[int, int], size: tuple[int, int]) -> None:
    """Copy the ``size`` = (w, h) window at ``offset`` = (col, row) of a class raster into a new tiled GeoTIFF."""
    with rasterio.open(src_path) as src:
        win = Window(offset[0], offset[1], size[0], size[1])
        grid = RasterGrid(src.crs, src.window_transform(win), size[0], size[1])
        cmap = src.colormap(1)
        with (
            atomic_output(dst_path) as tmp,
            rasterio.open(tmp, "w", **geotiff_profile(grid, 1, "uint8", nodata=src.nodata)) as dst,
        ):
            dst.write(src.read(1, window=win), 1)
            dst.write_colormap(1, cmap)
            dst.set_band_description(1, src.descriptions[0] or "class")


def _is_empty_area(err: Exception, options: ClassifyOptions) -> bool:
    """classify_pixels's "nothing valid to classify" (all nodata, or a block outside the mask)."""
    if isinstance(err, NoOverlapError):
        return options.mask is not None
    return isinstance(err, EmptyAreaError)


def _classify_block(task: BatchTask, model: str, options: ClassifyOptions, fb: Feedback) -> None:
    """Classify the task's halo into a hidden file, check its window, crop it to the block as the output."""
    from ..engine import classify_pixels

    out = Path(task.output)
    grid = RasterGrid.from_path(task.inputs[0])
    halo_path = out.with_name(f".{out.stem}.halo-{uuid.uuid4().hex[:8]}.tif")
    try:
        classify_pixels(
            list(task.inputs),
            model,
            halo_path,
            dataclasses.replace(options, extent=_bounds(grid, task.halo)),
            feedback=fb,
        )
        with rasterio.open(halo_path) as ds:
            got = (
                round((ds.transform.c - grid.transform.c) / grid.transform.a),
                round((ds.transform.f - grid.transform.f) / grid.transform.e),
                ds.width,
                ds.height,
            )
        if got != task.halo:  # would break seamlessness: never write such a block
            raise RuntimeError(f"classify_pixels returned window {got} for the halo {task.halo}.")
        bc, br, bw, bh = task.block
        shutil.copyfile(halo_path.with_suffix(".qml"), out.with_suffix(".qml"))
        _crop(halo_path, out, (bc - task.halo[0], br - task.halo[1]), (bw, bh))
    finally:
        for p in (halo_path, halo_path.with_suffix(".qml")):
            with contextlib.suppress(OSError):
                p.unlink()


def run_task(task: BatchTask, ctx: TaskContext, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """Classify one task and write its output and sidecar (runs on a Dask worker, or anywhere).

    Returns:
        ``{"name", "output", "empty", "seconds", "worker", "error"}``; ``error`` is the message of a
        :class:`DeepLandCoverError` (bad input: not worth retrying), else None.

    Raises:
        Exception: any other error (I/O, memory...), so that Dask retries the task.
    """
    from ..engine import classify_pixels

    t0 = time.perf_counter()
    threads, device = _task_runtime(ctx)
    fb = EventFeedback(ctx.cancel_event)
    out = Path(task.output)
    remove_stale(task)
    options = dataclasses.replace(ctx.options, threads=threads, device=device)
    empty = False
    try:
        if task.halo is None:
            classify_pixels(list(task.inputs), ctx.model, out, options, feedback=fb)
        else:
            _classify_block(task, ctx.model, options, fb)
    except DeepLandCoverError as e:
        if not _is_empty_area(e, ctx.options):
            return {
                "name": task.name,
                "output": str(out),
                "empty": False,
                "error": str(e),
                "seconds": time.perf_counter() - t0,
                "worker": worker_address(),
            }
        empty = True
    seconds = time.perf_counter() - t0
    write_sidecar(
        task,
        fingerprint,
        empty,
        {
            "seconds": round(seconds, 3),
            "device": device,
            "threads": threads,
            "worker": worker_address(),
            "pid": os.getpid(),
        },
    )
    return {
        "name": task.name,
        "output": str(out),
        "empty": empty,
        "error": None,
        "seconds": seconds,
        "worker": worker_address(),
    }
