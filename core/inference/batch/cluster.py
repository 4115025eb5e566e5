"""The Dask side of batch inference: the cluster, its workers, and what a task knows about the worker it runs on.

:func:`open_client` connects to a scheduler or starts a ``LocalCluster`` (one single-threaded worker process
per core, or per GPU when ONNX Runtime offers CUDA); :func:`worker_layout` tells how many ONNX Runtime
threads each task gets and which GPU each worker uses. Inside a task, :class:`EventFeedback` turns the run's
cancel ``Event`` into core's feedback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...errors import InputError

_log = logging.getLogger("deeplandcover")


class EventFeedback:
    """Core feedback inside a Dask task: canceled when the run's ``distributed.Event`` is set (checked <= 1/s)."""

    def __init__(self, event_name: str | None) -> None:
        self.event_name, self._last, self._canceled = event_name, 0.0, False

    def set_progress(self, percent: float) -> None:
        pass

    def is_canceled(self) -> bool:
        if self._canceled or not self.event_name or time.monotonic() - self._last < 1.0:
            return self._canceled
        self._last = time.monotonic()
        with contextlib.suppress(Exception):  # no scheduler (run outside Dask): never canceled
            from distributed import Event

            self._canceled = Event(self.event_name).is_set()
        return self._canceled

    def info(self, message: str) -> None:
        _log.info(message)

    def warning(self, message: str) -> None:
        _log.warning(message)


def worker_address() -> str | None:
    with contextlib.suppress(Exception):
        from distributed import get_worker

        return get_worker().address
    return None


def host_of(address: str) -> str:
    return address.split("://")[-1].rsplit(":", 1)[0]


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
    for cand in (
        prefix / "python.exe",
        prefix / "python3.exe",
        prefix / "bin" / "python3",
        shutil.which("python3"),
        shutil.which("python"),
    ):
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
            raise InputError(
                f"Cannot reach the Dask scheduler at {scheduler} ({e}). Start one with `dask scheduler` "
                "and workers with `dask worker <address>`, or leave the address empty for a local "
                "cluster."
            ) from e
        try:
            yield client
        finally:
            client.close()
        return
    n = int(n_workers) if n_workers and n_workers > 0 else (local_gpu_count() or os.cpu_count() or 1)
    _ensure_python_executable()
    cluster = LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def worker_layout(client: Any) -> tuple[dict[str, int], dict[str, int], int]:
    """(threads per task by host, CUDA device by worker address, number of workers) of a cluster."""
    workers = (
        client.scheduler_info(n_workers=-1)["workers"]
        if _accepts_n_workers(client)
        else client.scheduler_info()["workers"]
    )
    by_host: dict[str, list[str]] = {}
    for addr in sorted(workers):
        by_host.setdefault(host_of(addr), []).append(addr)
    ncores = client.run(os.cpu_count)
    gpus = client.run(local_gpu_count)
    threads = {h: max(1, (ncores.get(addrs[0]) or 1) // len(addrs)) for h, addrs in by_host.items()}
    gpu_map = {a: i % gpus[a] for addrs in by_host.values() for i, a in enumerate(addrs) if gpus.get(a)}
    return threads, gpu_map, len(workers)


def _accepts_n_workers(client: Any) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters
