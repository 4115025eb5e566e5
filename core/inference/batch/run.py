"""Batch inference over many rasters, or over large blocks of one mosaic, scheduled with Dask distributed.

Issue 10 ("beyond one machine"). The units of work are :class:`BatchTask` s:

* **whole-raster mode** (``block_size`` None/0): one task per input raster (or per group of rasters
  of a time-series / change model), classified by :func:`core.inference.classify_raster`.
* **block mode** (``block_size`` > 0): the grid of each input is cut into ``block_size`` blocks
  (pixels, aligned to the pixel grid). Each block is classified over a *halo* window that holds
  exactly the tiles of the whole-raster tiling that touch the block (see :func:`axis_span`), then
  cropped to the block. Because every block pixel then sums the same tiles with the same weights in
  the same order as a whole-raster run, the mosaic of blocks equals the whole-raster output byte for
  byte: there are no seams.

Tasks run on a Dask ``LocalCluster`` (one single-threaded worker process per core, or per GPU when
ONNX Runtime offers CUDA; each task gets ``cores / workers`` ONNX Runtime threads) or on an existing
cluster given by its scheduler address. Every task writes its own tiled GeoTIFF through
:func:`core.raster.atomic_output` and then a small JSON sidecar (``<output>.json``) holding the
fingerprint of what produced it (model SHA-256, input sizes/mtimes, window, settings). A re-run
skips tasks whose output and matching sidecar exist (resumable). A task that raises an unexpected
error (I/O, a killed worker) is retried by Dask; errors of the inputs themselves
(:class:`core.errors.DeepLandCoverError`) are not retried. Failures are reported in
:attr:`BatchResult.failed`, never as a crash of the whole run. At the end a VRT ties the outputs
together (GDAL ``BuildVRT`` through ``osgeo``; a plain VRT writer when the bindings are missing).

Command line (no QGIS needed)::

    python -m deeplandcover.core.inference.batch --model m.onnx --out out_dir [--scheduler tcp://host:8786] \
        [--workers N] [--block-size 4096] inputs...

Never imports qgis or torch.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.transform
from rasterio.windows import Window

from ...errors import CanceledError, DeepLandCoverError, EmptyAreaError, InputError, NoOverlapError
from ...feedback import Feedback, ensure_feedback
from ...raster.grid import RasterGrid
from ...raster.io import atomic_output, geotiff_profile
from ...raster.tiling import tile_offsets

SIDECAR_FORMAT = "deeplandcover-batch"
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
#: ``classify_raster`` arguments that the batch runner sets itself, per task.
_RESERVED = ("out_path", "prob_path", "extent", "area_table_path", "feedback")
_log = logging.getLogger("deeplandcover")


# ------------------------------------------------------------------------------------ data types
@dataclass(frozen=True)
class BatchTask:
    """One unit of work: classify ``inputs`` (over ``halo``) and write ``output`` (the ``block`` part).

    Attributes:
        name: unique task name (the output file stem).
        inputs: raster path(s) of one model input (1, T dates, or a pair), absolute.
        output: the final class GeoTIFF.
        block: ``(col_off, row_off, width, height)`` pixels of the input grid written to ``output``,
            or None for the whole raster.
        halo: ``(col_off, row_off, width, height)`` pixels classified to produce ``block`` (contains it).
    """

    name: str
    inputs: tuple[str, ...]
    output: str
    block: tuple[int, int, int, int] | None = None
    halo: tuple[int, int, int, int] | None = None


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


# ------------------------------------------------------------------------------------- inputs
def expand_inputs(inputs: str | os.PathLike | Sequence[Any], pattern: str = "*.tif") -> list[tuple[Path, ...]]:
    """Turn a folder, a glob, a file (raster or ``.vrt`` mosaic) or a list of them into input groups.

    Args:
        inputs: a folder (rasters matching ``pattern`` in it), a glob (``/data/*/T33*.tif``), a raster
            file, or a sequence of those; a tuple/list *inside* the sequence is one group of rasters
            classified together (a time series or a change pair).
        pattern: file pattern used for folders.

    Returns:
        One tuple of absolute paths per task input, sorted by name within each folder/glob.

    Raises:
        InputError: a path that does not exist, or nothing found.
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    groups: list[tuple[Path, ...]] = []
    for item in items:
        if isinstance(item, (tuple, list)):
            group = tuple(Path(p).resolve() for p in item)
            missing = [str(p) for p in group if not p.is_file()]
            if missing:
                raise InputError(f"Input raster(s) {missing} do not exist; check the paths.")
            groups.append(group)
            continue
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.glob(pattern) if q.is_file() and not q.name.startswith("."))
        elif glob.has_magic(str(p)):
            found = sorted(Path(q) for q in glob.glob(str(p)) if Path(q).is_file())
        elif p.is_file():
            found = [p]
        else:
            raise InputError(f"Input {p} is neither a raster file, a folder nor a glob pattern that exists.")
        groups.extend((q.resolve(),) for q in found if q.suffix.lower() in RASTER_SUFFIXES)
    if not groups:
        raise InputError(f"No input rasters found in {inputs!s} (pattern {pattern!r}); check the folder and pattern.")
    return groups


# ------------------------------------------------------------------------------------- blocks
def axis_span(a: int, b: int, length: int, tile: int, stride: int) -> tuple[int, int]:
    """The stretch ``[start, end)`` of one axis to classify so that pixels ``[a, b)`` come out exact.

    The whole-raster tiling puts tiles at ``offs = tile_offsets(length, tile, stride)``. A pixel's
    result is the weighted sum of the tiles covering it, so ``[start, end)`` is the union of the tiles
    that touch ``[a, b)``. ``start`` is such a tile offset, so the tiling of ``[start, end)`` restarts
    on the same offsets; ``end`` is the end of the last touching tile, so no extra snapped tile
    (``cover_edges``) of the shorter stretch covers ``[a, b)``. Gaussian weights depend only on the
    position inside a tile; centre-crop cut lines between tiles that both touch ``[a, b)`` are the
    same, and the others lie outside ``[a, b)`` (overlap >= 0).

    Args:
        a, b: first and one-past-last pixel of the block along the axis.
        length: axis length of the raster, pixels.
        tile, stride: tile edge and ``tile - overlap``, pixels.

    Returns:
        ``(start, end)`` pixels, ``start <= a < b <= end <= length``.
    """
    offs = tile_offsets(length, tile, stride, cover_edges=True)
    n = min(tile, length)
    touching = [o for o in offs if o < b and o + n > a]
    return min(touching), min(length, max(o + n for o in touching))


def plan_blocks(width: int, height: int, block_size: int, tile: int, overlap: int) -> list[tuple[Window, Window]]:
    """Blocks of ``block_size`` pixels over a ``width`` x ``height`` grid, each with its halo window.

    Blocks start at multiples of ``block_size`` (the last ones are smaller); halos come from
    :func:`axis_span` so that cropping each halo's classification to its block reproduces the
    whole-raster classification exactly.

    Returns:
        Row-major list of ``(block, halo)`` windows in pixels of the grid.

    Raises:
        InputError: ``block_size`` smaller than the tile size.
    """
    if block_size < tile:
        raise InputError(f"Block size {block_size} px is smaller than the tile size {tile} px; use blocks of "
                         "several thousand pixels (e.g. 4096), or 0 to classify whole rasters.")
    stride = tile - overlap
    out = []
    for r in range(0, height, block_size):
        r1 = min(r + block_size, height)
        y0, y1 = axis_span(r, r1, height, tile, stride)
        for c in range(0, width, block_size):
            c1 = min(c + block_size, width)
            x0, x1 = axis_span(c, c1, width, tile, stride)
            out.append((Window(c, r, c1 - c, r1 - r), Window(x0, y0, x1 - x0, y1 - y0)))
    return out


def _win(w: Window) -> tuple[int, int, int, int]:
    return int(w.col_off), int(w.row_off), int(w.width), int(w.height)


def plan_tasks(groups: Sequence[tuple[Path, ...]], out_dir: Path, block_size: int | None, tile: int,
               overlap: int) -> list[BatchTask]:
    """One task per group (whole rasters) or per block of each group's grid.

    Output names: ``<stem of first raster>_class.tif``, or ``<stem>_class_<row>_<col>.tif`` for blocks
    (block row and column numbers, zero-padded).

    Raises:
        InputError: two groups whose first rasters share a file stem (their outputs would collide).
    """
    stems: dict[str, Path] = {}
    tasks: list[BatchTask] = []
    for group in groups:
        stem = group[0].stem
        if stem in stems:
            raise InputError(f"Two inputs are both named {stem!r} ({stems[stem]} and {group[0]}); their outputs "
                             "would collide in one folder. Rename one or classify the folders separately.")
        stems[stem] = group[0]
        ins = tuple(str(p) for p in group)
        if not block_size:
            tasks.append(BatchTask(f"{stem}_class", ins, str(out_dir / f"{stem}_class.tif")))
            continue
        g = RasterGrid.from_path(group[0])
        nr, nc = -(-g.height // block_size), -(-g.width // block_size)
        dr, dc = len(str(nr - 1)), len(str(nc - 1))
        for block, halo in plan_blocks(g.width, g.height, block_size, tile, overlap):
            i, j = int(block.row_off) // block_size, int(block.col_off) // block_size
            name = f"{stem}_class_{i:0{dr}d}_{j:0{dc}d}"
            tasks.append(BatchTask(name, ins, str(out_dir / f"{name}.tif"), _win(block), _win(halo)))
    return tasks


# -------------------------------------------------------------------------------- fingerprints
def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _input_stamp(path: str) -> list[Any]:
    st = os.stat(path)
    return [path, st.st_size, st.st_mtime_ns]


def task_fingerprint(task: BatchTask, model_sha: str, settings: dict[str, Any]) -> dict[str, Any]:
    """What an output depends on: model, inputs (path, size, mtime), window and result-changing settings."""
    return {"model_sha256": model_sha, "inputs": [_input_stamp(p) for p in task.inputs], "block": task.block,
            "halo": task.halo, "settings": settings}


def _sidecar(output: str | os.PathLike) -> Path:
    return Path(str(output) + ".json")


def is_finished(task: BatchTask, fingerprint: dict[str, Any]) -> bool | None:
    """Whether ``task`` is done with this fingerprint: True (output written), None (done, area empty), False.

    The GeoTIFF is renamed into place atomically and the sidecar written after it, so a sidecar with the
    same fingerprint next to an existing output means a complete output of the same model and settings.
    """
    side = _sidecar(task.output)
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if meta.get("format") != SIDECAR_FORMAT or meta.get("fingerprint") != json.loads(json.dumps(fingerprint)):
        return False
    if meta.get("empty"):
        return None
    return True if Path(task.output).is_file() else False


def _write_sidecar(task: BatchTask, fingerprint: dict[str, Any], empty: bool, info: dict[str, Any]) -> None:
    with atomic_output(_sidecar(task.output)) as tmp:
        tmp.write_text(json.dumps({"format": SIDECAR_FORMAT, "version": 1, "fingerprint": fingerprint,
                                   "empty": empty, **info}, indent=1), encoding="utf-8")


def _remove_stale(task: BatchTask) -> None:
    """Delete leftovers of a killed earlier attempt (temporary files never look complete, but take space)."""
    out = Path(task.output)
    patterns = (f".{out.stem}.tmp-*", f".{out.name}.tmp-*", f".{out.stem}.halo-*", f"..{out.stem}.halo-*")
    for p in [q for pat in patterns for q in out.parent.glob(pat)]:
        with contextlib.suppress(OSError):
            p.unlink()


# -------------------------------------------------------------------------------- worker side
@dataclass(frozen=True)
class TaskContext:
    """What every task needs besides its :class:`BatchTask` (sent once per task, small).

    Attributes:
        model: the ``.onnx`` file (a path every worker can read).
        options: keyword arguments for ``classify_raster`` (tile_size, overlap, batch_size, ...).
        threads_by_host: ONNX Runtime threads per task on each worker host (cores / workers there).
        gpu_by_worker: worker address -> CUDA device number, for ``device="auto"`` on GPU workers.
        cancel_event: name of the Dask ``Event`` that asks running tasks to stop, or None.
    """

    model: str
    options: dict[str, Any]
    threads_by_host: dict[str, int]
    gpu_by_worker: dict[str, int]
    cancel_event: str | None


class _EventFeedback:
    """Core feedback inside a Dask task: canceled when the run's ``distributed.Event`` is set (checked <= 1/s)."""

    def __init__(self, event_name: str | None) -> None:
        self.event_name, self._last, self._canceled = event_name, 0.0, False

    def set_progress(self, percent: float) -> None:  # noqa: D102
        pass

    def is_canceled(self) -> bool:  # noqa: D102
        if self._canceled or not self.event_name or time.monotonic() - self._last < 1.0:
            return self._canceled
        self._last = time.monotonic()
        with contextlib.suppress(Exception):  # no scheduler (run outside Dask): never canceled
            from distributed import Event

            self._canceled = Event(self.event_name).is_set()
        return self._canceled

    def info(self, message: str) -> None:  # noqa: D102
        _log.info(message)

    def warning(self, message: str) -> None:  # noqa: D102
        _log.warning(message)


def _worker_address() -> str | None:
    with contextlib.suppress(Exception):
        from distributed import get_worker

        return get_worker().address
    return None


def _host(address: str) -> str:
    return address.split("://")[-1].rsplit(":", 1)[0]


def _task_runtime(ctx: TaskContext) -> tuple[int, str]:
    """ONNX Runtime threads and device for a task on this worker."""
    addr = _worker_address()
    threads = int(ctx.options.get("threads") or 0)
    if threads <= 0:
        threads = ctx.threads_by_host.get(_host(addr), 1) if addr else 0
    device = str(ctx.options.get("device") or "auto")
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
        with atomic_output(dst_path) as tmp, rasterio.open(tmp, "w", **geotiff_profile(grid, 1, "uint8",
                                                                                   nodata=src.nodata)) as dst:
            dst.write(src.read(1, window=win), 1)
            dst.write_colormap(1, cmap)
            dst.set_band_description(1, src.descriptions[0] or "class")


def _is_empty_area(err: Exception, options: dict[str, Any]) -> bool:
    """classify_raster's "nothing valid to classify" (all nodata, or a block outside the mask)."""
    if isinstance(err, NoOverlapError):
        return options.get("mask") is not None
    return isinstance(err, EmptyAreaError)


def run_task(task: BatchTask, ctx: TaskContext, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """Classify one task and write its output and sidecar (runs on a Dask worker, or anywhere).

    Returns:
        ``{"name", "output", "empty", "seconds", "worker", "error"}``; ``error`` is the message of a
        :class:`DeepLandCoverError` (bad input: not worth retrying), else None.

    Raises:
        Exception: any other error (I/O, memory...), so that Dask retries the task.
    """
    from ..engine import classify_raster

    t0 = time.perf_counter()
    threads, device = _task_runtime(ctx)
    fb = _EventFeedback(ctx.cancel_event)
    out = Path(task.output)
    _remove_stale(task)
    kwargs = {**ctx.options, "threads": threads, "device": device, "feedback": fb}
    empty = False
    try:
        if task.halo is None:
            classify_raster(list(task.inputs), ctx.model, out, **kwargs)
        else:
            grid = RasterGrid.from_path(task.inputs[0])
            halo_path = out.with_name(f".{out.stem}.halo-{uuid.uuid4().hex[:8]}.tif")
            try:
                classify_raster(list(task.inputs), ctx.model, halo_path, extent=_bounds(grid, task.halo), **kwargs)
                with rasterio.open(halo_path) as ds:
                    got = (round((ds.transform.c - grid.transform.c) / grid.transform.a),
                           round((ds.transform.f - grid.transform.f) / grid.transform.e), ds.width, ds.height)
                if got != task.halo:  # would break seamlessness: never write such a block
                    raise RuntimeError(f"classify_raster returned window {got} for the halo {task.halo}.")
                bc, br, bw, bh = task.block
                shutil.copyfile(halo_path.with_suffix(".qml"), out.with_suffix(".qml"))
                _crop(halo_path, out, (bc - task.halo[0], br - task.halo[1]), (bw, bh))
            finally:
                for p in (halo_path, halo_path.with_suffix(".qml")):
                    with contextlib.suppress(OSError):
                        p.unlink()
    except DeepLandCoverError as e:
        if not _is_empty_area(e, ctx.options):
            return {"name": task.name, "output": str(out), "empty": False, "error": str(e),
                    "seconds": time.perf_counter() - t0, "worker": _worker_address()}
        empty = True
    seconds = time.perf_counter() - t0
    _write_sidecar(task, fingerprint, empty, {"seconds": round(seconds, 3), "device": device, "threads": threads,
                                              "worker": _worker_address(), "pid": os.getpid()})
    return {"name": task.name, "output": str(out), "empty": empty, "error": None, "seconds": seconds,
            "worker": _worker_address()}


# ------------------------------------------------------------------------------------ cluster
def local_gpu_count() -> int:
    """GPUs this process can use through ONNX Runtime CUDA (0 without onnxruntime-gpu or a GPU)."""
    try:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return 0
    except ImportError:
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    exe = shutil.which("nvidia-smi")
    if not exe:
        return 0
    import subprocess

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10).stdout
        return sum(1 for line in out.splitlines() if line.startswith("GPU "))
    return 0


def _ensure_python_executable() -> None:
    """Inside QGIS ``sys.executable`` is the QGIS binary; worker processes must start Python instead."""
    import multiprocessing

    if Path(sys.executable).name.lower().startswith("python"):
        return
    prefix = Path(sys.exec_prefix)
    for cand in (prefix / "python.exe", prefix / "python3.exe", prefix / "bin" / "python3",
                 shutil.which("python3"), shutil.which("python")):
        if cand and Path(cand).is_file():
            multiprocessing.set_executable(str(cand))
            return


@contextlib.contextmanager
def open_client(scheduler: Any = None, n_workers: int | None = None) -> Iterator[Any]:
    """A Dask ``Client``: on ``scheduler`` (an address or a Client), else on a new ``LocalCluster``.

    The local cluster has ``n_workers`` single-threaded worker processes (default: one per GPU when
    ONNX Runtime offers CUDA, else one per core) and no dashboard; it is closed on exit.

    Raises:
        DependencyError: dask/distributed are not installed.
        InputError: the scheduler address cannot be reached.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:
        from ... import deps

        raise deps.DependencyError(
            "Batch inference needs dask and distributed. " + deps.install_hint([deps.DASK, deps.DISTRIBUTED])
        ) from e
    if scheduler is not None and not isinstance(scheduler, (str, os.PathLike)):
        yield scheduler  # a Client the caller owns
        return
    if scheduler:
        try:
            client = Client(str(scheduler), timeout="20s")
        except (OSError, TimeoutError) as e:
            raise InputError(f"Cannot reach the Dask scheduler at {scheduler} ({e}). Start one with `dask scheduler` "
                             "and workers with `dask worker <address>`, or leave the address empty for a local "
                             "cluster.") from e
        try:
            yield client
        finally:
            client.close()
        return
    n = int(n_workers) if n_workers and n_workers > 0 else (local_gpu_count() or os.cpu_count() or 1)
    _ensure_python_executable()
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _gpu_count_here() -> int:
    return local_gpu_count()


def worker_layout(client: Any) -> tuple[dict[str, int], dict[str, int], int]:
    """(threads per task by host, CUDA device by worker address, number of workers) of a cluster."""
    workers = client.scheduler_info(n_workers=-1)["workers"] if _accepts_n_workers(client) else \
        client.scheduler_info()["workers"]
    by_host: dict[str, list[str]] = {}
    for addr in sorted(workers):
        by_host.setdefault(_host(addr), []).append(addr)
    ncores = client.run(os.cpu_count)
    gpus = client.run(_gpu_count_here)
    threads = {h: max(1, (ncores.get(addrs[0]) or 1) // len(addrs)) for h, addrs in by_host.items()}
    gpu_map = {a: i % gpus[a] for addrs in by_host.values() for i, a in enumerate(addrs) if gpus.get(a)}
    return threads, gpu_map, len(workers)


def _accepts_n_workers(client: Any) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


# --------------------------------------------------------------------------------------- VRT
def build_vrt(paths: Sequence[Path], vrt_path: Path, bounds: tuple[float, float, float, float] | None = None) -> Path:
    """A VRT mosaic of single-band class GeoTIFFs of one CRS, written atomically (relative source paths).

    Uses GDAL ``BuildVRT`` (``osgeo``), else :func:`write_vrt` (same CRS and pixel size needed).

    Args:
        paths: the GeoTIFFs.
        vrt_path: the VRT to write.
        bounds: ``(left, bottom, right, top)`` of the mosaic in CRS units (default: union of ``paths``),
            so that empty or failed blocks at the edge leave nodata instead of shrinking the mosaic.
    """
    try:
        from osgeo import gdal
    except ImportError:
        return write_vrt(paths, vrt_path, bounds)
    with atomic_output(vrt_path) as tmp, _gdal_exceptions(gdal):
        try:
            ds = gdal.BuildVRT(str(tmp), [str(p) for p in paths], outputBounds=bounds)
        except RuntimeError as e:
            raise InputError(f"GDAL could not build a VRT of {len(paths)} outputs: {e}") from e
        if ds is None:
            raise InputError(f"GDAL could not build a VRT of {len(paths)} outputs: {gdal.GetLastErrorMsg()}")
        ds = None  # noqa: F841 - closing the dataset writes the file
    return vrt_path


@contextlib.contextmanager
def _gdal_exceptions(gdal) -> Iterator[None]:
    """GDAL Python exceptions on for the calls inside, the caller's setting restored after.

    The setting is process-wide and QGIS or another plugin may rely on theirs, so it is never left changed.
    GDAL >= 3.7 has ``gdal.ExceptionMgr`` for this; older bindings get the same by hand.
    """
    if hasattr(gdal, "ExceptionMgr"):
        with gdal.ExceptionMgr(useExceptions=True):
            yield
        return
    was = gdal.GetUseExceptions()
    gdal.UseExceptions()
    try:
        yield
    finally:
        if not was:
            gdal.DontUseExceptions()


def write_vrt(paths: Sequence[Path], vrt_path: Path, bounds: tuple[float, float, float, float] | None = None) -> Path:
    """Plain VRT XML mosaic of same-CRS, same-pixel-size single-band uint8 rasters (no GDAL bindings needed).

    Raises:
        InputError: the rasters differ in CRS or pixel size.
    """
    from xml.sax.saxutils import escape

    grids, cmap, nodata = [], None, None
    for p in paths:
        with rasterio.open(p) as ds:
            grids.append(RasterGrid.from_dataset(ds))
            if cmap is None:
                cmap, nodata = ds.colormap(1), ds.nodata
    g0 = grids[0]
    if any(g.crs != g0.crs or not np.allclose(g.pixel_size, g0.pixel_size) for g in grids):
        raise InputError("The outputs differ in CRS or pixel size; a VRT needs one grid. Open them separately.")
    px, py = g0.pixel_size
    left, bottom, right, top = bounds or (min(g.bounds[0] for g in grids), min(g.bounds[1] for g in grids),
                                          max(g.bounds[2] for g in grids), max(g.bounds[3] for g in grids))
    w, h = round((right - left) / px), round((top - bottom) / py)
    entries = "".join(f'<Entry c1="{c[0]}" c2="{c[1]}" c3="{c[2]}" c4="{c[3]}"/>' for _, c in sorted(cmap.items()))
    sources = []
    for p, g in zip(paths, grids):
        rel = os.path.relpath(p, vrt_path.parent)
        xo, yo = round((g.bounds[0] - left) / px), round((top - g.bounds[3]) / py)
        sources.append(
            f'<SimpleSource><SourceFilename relativeToVRT="1">{escape(rel)}</SourceFilename><SourceBand>1</SourceBand>'
            f'<SrcRect xOff="0" yOff="0" xSize="{g.width}" ySize="{g.height}"/>'
            f'<DstRect xOff="{xo}" yOff="{yo}" xSize="{g.width}" ySize="{g.height}"/></SimpleSource>')
    nd = f"<NoDataValue>{nodata:g}</NoDataValue>" if nodata is not None else ""
    xml = (f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><SRS>{escape(g0.crs.to_wkt()) if g0.crs else ""}</SRS>'
           f"<GeoTransform>{left!r}, {px!r}, 0.0, {top!r}, 0.0, {-py!r}</GeoTransform>"
           f'<VRTRasterBand dataType="Byte" band="1">{nd}<ColorInterp>Palette</ColorInterp>'
           f"<ColorTable>{entries}</ColorTable>{''.join(sources)}</VRTRasterBand></VRTDataset>\n")
    with atomic_output(vrt_path) as tmp:
        tmp.write_text(xml, encoding="utf-8")
    return vrt_path


def _task_bounds(tasks: Sequence[BatchTask]) -> tuple[float, float, float, float]:
    """Union of the areas of all tasks (whole rasters or blocks) with readable inputs, CRS units."""
    grids: dict[str, RasterGrid] = {}
    boxes = []
    for t in tasks:
        if t.inputs[0] not in grids:
            try:
                grids[t.inputs[0]] = RasterGrid.from_path(t.inputs[0])
            except rasterio.errors.RasterioError:  # an unreadable input (reported as failed) adds no area
                continue
        g = grids[t.inputs[0]]
        if t.block is not None:
            c, r, w, h = t.block
            g = RasterGrid(g.crs, g.window_transform(Window(c, r, w, h)), w, h)
        boxes.append(g.bounds)
    b = np.array(boxes, dtype=float)
    return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())


def _mosaic(outputs: list[Path], tasks: list[BatchTask], out_dir: Path, name: str, warnings: list[str],
            fb: Feedback) -> Path | None:
    if not outputs:
        return None
    crs = set()
    for p in outputs:
        with rasterio.open(p) as ds:
            crs.add(ds.crs.to_wkt() if ds.crs else "")
    if len(crs) > 1:
        msg = (f"The outputs are in {len(crs)} different CRSs, so no VRT mosaic was built; "
               "open the GeoTIFFs individually or reproject the inputs to one CRS.")
        warnings.append(msg)
        fb.warning(msg)
        return None
    vrt = build_vrt(outputs, out_dir / f"{name}.vrt", _task_bounds(tasks))
    qml = outputs[0].with_suffix(".qml")
    if qml.is_file():
        shutil.copyfile(qml, vrt.with_suffix(".qml"))
    return vrt


# ------------------------------------------------------------------------------------ driver
def _resolve_tiling(model: Path, options: dict[str, Any]) -> tuple[int, int]:
    """Tile size and overlap (pixels) exactly as classify_raster resolves them for this model."""
    from ..engine import card_of_session, open_session, tile_params

    sess, _ = open_session(model, "cpu", 1)
    return tile_params(sess, card_of_session(sess), options.get("tile_size"), options.get("overlap"), [])


def _settings(options: dict[str, Any], tile: int, overlap: int) -> dict[str, Any]:
    """Options that change the output (batch size, threads and device do not)."""
    mask = options.get("mask")
    if isinstance(mask, (str, os.PathLike)):
        mask_id: Any = _input_stamp(str(Path(mask).resolve()))
    elif mask is not None:
        mask_id = hashlib.sha256(json.dumps(list(mask), sort_keys=True, default=str).encode()).hexdigest()
    else:
        mask_id = None
    band_map = options.get("band_map")
    return {"tile": tile, "overlap": overlap, "blending": options.get("blending", "gaussian"),
            "tta": bool(options.get("tta", False)), "band_map": list(band_map) if band_map else None, "mask": mask_id}


def classify_batch(
    inputs: str | os.PathLike | Sequence[Any],
    model: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    scheduler: Any = None,
    n_workers: int | None = None,
    block_size: int | None = None,
    overwrite: bool = False,
    pattern: str = "*.tif",
    retries: int = 2,
    vrt_name: str = "classified",
    feedback: Feedback | None = None,
    **classify_kwargs: Any,
) -> BatchResult:
    """Classify many rasters (or the blocks of a mosaic) in parallel with Dask distributed.

    Args:
        inputs: folder, glob, raster/VRT file, or a list of them (inner tuples = one multi-date input);
            see :func:`expand_inputs`.
        model: ``.onnx`` model with its card; must be readable at the same path on every worker.
        out_dir: output folder: ``<stem>_class.tif`` (+ ``.qml``, ``.json`` sidecar) per raster or block,
            and ``<vrt_name>.vrt`` (+ ``.qml``) over all of them.
        scheduler: Dask scheduler address (``tcp://host:8786``) or a ``distributed.Client``; None starts a
            ``LocalCluster`` for this run.
        n_workers: local workers (None/0: one per GPU with onnxruntime-gpu, else one per core).
        block_size: block edge in pixels for block mode (classify each raster in seamless blocks); None/0
            classifies whole rasters, one task each.
        overwrite: recompute finished outputs too.
        pattern: file pattern for folders in ``inputs``.
        retries: Dask retries of a task that raised an unexpected error (a killed worker's task is
            rescheduled by Dask itself).
        vrt_name: file stem of the VRT mosaic.
        feedback: progress (finished tasks), cancel (cancels the tasks, stops the cluster) and log.
        **classify_kwargs: passed to :func:`core.inference.classify_raster` (``tile_size``, ``overlap``,
            ``batch_size``, ``blending``, ``tta``, ``device``, ``threads`` (0: cores / workers),
            ``band_map``, ``mask``).

    Returns:
        :class:`BatchResult`.

    Raises:
        InputError: no inputs, colliding names, a reserved argument, a block smaller than a tile, an
            unreachable scheduler.
        ModelFileError: the model cannot be read.
        CanceledError: canceled; finished outputs stay (a re-run resumes), no partial file is left.
    """
    t0 = time.perf_counter()
    fb = ensure_feedback(feedback)
    bad = [k for k in classify_kwargs if k in _RESERVED]
    if bad:
        raise InputError(f"classify_batch sets {bad} itself for every task; remove them.")
    if classify_kwargs.get("resample"):
        raise InputError("classify_batch plans its blocks on the input rasters' grid and cannot resample them; warp "
                         "the rasters to the model's pixel size first (gdalwarp -tr), or use Classify Pixels with "
                         "RESAMPLE for one raster.")
    model = Path(model).resolve()
    out = Path(out_dir).resolve()
    groups = expand_inputs(inputs, pattern)
    tile, overlap = _resolve_tiling(model, classify_kwargs)
    tasks = plan_tasks(groups, out, block_size, tile, overlap)
    out.mkdir(parents=True, exist_ok=True)
    model_sha = file_sha256(model)
    settings = _settings(classify_kwargs, tile, overlap)
    prints = {t.name: task_fingerprint(t, model_sha, settings) for t in tasks}
    state = {t.name: (False if overwrite else is_finished(t, prints[t.name])) for t in tasks}
    todo = [t for t in tasks if state[t.name] is False]
    skipped = [Path(t.output) for t in tasks if state[t.name] is True]
    empty = [t.name for t in tasks if state[t.name] is None]
    fb.info(f"{len(tasks)} task(s) over {len(groups)} input(s) ({'blocks of ' + str(block_size) + ' px' if block_size else 'whole rasters'}, "
            f"tile {tile} px, overlap {overlap} px): {len(todo)} to run, {len(tasks) - len(todo)} already finished.")
    computed: list[Path] = []
    failed: list[BatchFailure] = []
    warnings: list[str] = []
    n_run = 0
    if todo:
        for t in todo:
            _remove_stale(t)
            _sidecar(t.output).unlink(missing_ok=True)
        with open_client(scheduler, n_workers) as client:
            threads, gpus, n_run = worker_layout(client)
            fb.info(f"Dask: {n_run} worker(s) at {client.scheduler.address}; ONNX Runtime threads per task "
                    f"{sorted(set(threads.values()))}{'; GPUs ' + str(sorted(set(gpus.values()))) if gpus else ''}.")
            ctx = TaskContext(str(model), dict(classify_kwargs), threads, gpus, f"dlc-cancel-{uuid.uuid4().hex}")
            done, bad_tasks, empties = _run_tasks(client, todo, ctx, prints, retries, fb)
            computed, failed = done, bad_tasks
            empty += empties
    order = {Path(t.output): i for i, t in enumerate(tasks)}
    computed.sort(key=order.__getitem__)
    rank = {t.name: i for i, t in enumerate(tasks)}
    empty.sort(key=rank.__getitem__)
    failed.sort(key=lambda f: rank[f.name])
    outputs = sorted(set(computed) | set(skipped), key=order.__getitem__)
    for f in failed:
        fb.warning(f"Task {f.name} failed: {f.error}")
    if failed:
        warnings.append(f"{len(failed)} task(s) failed; the VRT has gaps there. Re-run to retry only them.")
    vrt = _mosaic(outputs, tasks, out, vrt_name, warnings, fb)
    seconds = time.perf_counter() - t0
    fb.set_progress(100.0)
    fb.info(f"Batch done in {seconds:.1f} s: {len(computed)} computed, {len(skipped)} skipped, {len(empty)} empty, "
            f"{len(failed)} failed.")
    return BatchResult(outputs, vrt, computed, skipped, empty, failed, seconds, n_run, warnings)


def _run_tasks(client: Any, todo: list[BatchTask], ctx: TaskContext, prints: dict[str, dict], retries: int,
               fb: Feedback) -> tuple[list[Path], list[BatchFailure], list[str]]:
    """Submit the tasks, collect them as they complete (progress, cancel); never raises for a task's failure."""
    from distributed import Event, as_completed

    futures = {client.submit(run_task, t, ctx, prints[t.name], retries=retries, pure=False,
                             key=f"dlc-{t.name}-{uuid.uuid4().hex[:8]}"): t for t in todo}
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


# ---------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns 0 (all done), 1 (some tasks failed) or 2 (bad arguments/canceled)."""
    import argparse

    from ...feedback import PrintFeedback

    ap = argparse.ArgumentParser(prog="python -m deeplandcover.core.inference.batch",
                                 description="Classify many rasters (or blocks of a mosaic) with an ONNX model on "
                                             "a Dask cluster; writes one GeoTIFF per raster/block and a VRT.")
    ap.add_argument("inputs", nargs="+", help="raster files, folders, globs (quoted) or .vrt mosaics")
    ap.add_argument("--model", required=True, help=".onnx model written by Train Model")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://10.0.0.1:8786 "
                                                      "(default: a local cluster)")
    ap.add_argument("--workers", type=int, default=0, help="local workers (0: one per GPU, else per core)")
    ap.add_argument("--pattern", default="*.tif", help="file pattern for folders (default *.tif)")
    ap.add_argument("--block-size", type=int, default=0, help="block edge in pixels (0: whole rasters)")
    ap.add_argument("--tile-size", type=int, default=0, help="tile edge in pixels (0: the model's)")
    ap.add_argument("--overlap", type=int, default=-1, help="tile overlap in pixels (-1: the model's)")
    ap.add_argument("--batch-size", type=int, default=4, help="tiles per model call")
    ap.add_argument("--blending", choices=("gaussian", "center"), default="gaussian")
    ap.add_argument("--tta", action="store_true", help="test-time augmentation (8 dihedral transforms)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or tensorrt")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads per task (0: cores / workers)")
    ap.add_argument("--retries", type=int, default=2, help="retries of a task that failed unexpectedly")
    ap.add_argument("--overwrite", action="store_true", help="recompute finished outputs")
    a = ap.parse_args(argv)
    fb = PrintFeedback()
    try:
        res = classify_batch(a.inputs, a.model, a.out, scheduler=a.scheduler, n_workers=a.workers,
                             block_size=a.block_size, overwrite=a.overwrite, pattern=a.pattern, retries=a.retries,
                             feedback=fb, tile_size=a.tile_size or None, overlap=a.overlap, batch_size=a.batch_size,
                             blending=a.blending, tta=a.tta, device=a.device, threads=a.threads)
    except DeepLandCoverError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted; finished outputs are kept and a re-run resumes.", file=sys.stderr)
        return 2
    print(json.dumps({"vrt": str(res.vrt) if res.vrt else None, "computed": len(res.computed),
                      "skipped": len(res.skipped), "empty": len(res.empty),
                      "failed": [asdict(f) for f in res.failed], "seconds": round(res.seconds, 2)}, indent=1))
    return 1 if res.failed else 0

