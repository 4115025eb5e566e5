"""Process-group helpers for multi-GPU / multi-node training with PyTorch DistributedDataParallel.

:func:`core.training.trainer.train_model` calls :func:`setup` first. Under ``torchrun`` (environment variables
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT`` set by the launcher) it
joins the process group (backend ``nccl`` on CUDA, ``gloo`` on CPU) and pins the process to GPU
``LOCAL_RANK``; without those variables (a plain ``python`` run, QGIS) it returns a single-process
context and touches nothing, so a single-process run is unchanged. The collective helpers below are
no-ops in a single process. Launch commands: ``docs/training.md``.

A distributed run (:class:`core.training.trainer.Trainer`) wraps the model in DistributedDataParallel, gives
each rank its share of the training chips (``DistributedSampler``; ``batch_size`` is per process) and of the
validation chips (confusion matrices all-reduced), seeds each rank with ``seed + rank`` and broadcasts rank 0's
learning rate and early-stopping decisions. Only rank 0 writes files (``out_dir`` on rank 0's machine); every
rank returns the same metrics.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..errors import InputError


@dataclass
class DistContext:
    """Where this process stands in a (possibly single-process) training job.

    Attributes:
        rank: global rank 0..world_size-1 (0 = the process that writes files).
        world_size: number of training processes (1 = no DDP).
        local_rank: rank on this node (selects the GPU ``cuda:local_rank``).
        local_world_size: processes on this node (divides the CPU threads).
        backend: ``nccl``, ``gloo`` or ``""`` (single process).
        owns_group: True when :func:`setup` created the process group (then :func:`cleanup` destroys it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str = ""
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only process that writes checkpoints, logs, ONNX and the report."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name, "")
    try:
        return int(v) if v.strip() else default
    except ValueError as e:
        raise InputError(
            f"Environment variable {name}={v!r} is not an integer; launch with torchrun, which sets it."
        ) from e


def env_context() -> DistContext:
    """The torchrun environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``), without joining."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"Invalid torchrun environment: RANK={rank}, WORLD_SIZE={world}.")
    return DistContext(rank, world, local, max(local_world, 1))


def setup(device: str = "auto") -> tuple[DistContext, torch.device]:
    """Join the torchrun process group when there is one, and choose this process's device.

    Args:
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda`` (as ``TrainConfig.device``).

    Returns:
        ``(context, device)``: ``cuda:LOCAL_RANK`` (DDP on GPUs), ``cuda`` or ``cpu``. An already
        initialised default process group (e.g. created by the caller) is reused.

    Raises:
        InputError: ``WORLD_SIZE > 1`` on CUDA with fewer visible GPUs than ``LOCAL_RANK + 1``.
    """
    ctx = env_context()
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if not ctx.enabled:
        return ctx, torch.device("cuda" if cuda else "cpu")
    if cuda:
        if ctx.local_rank >= torch.cuda.device_count():
            raise InputError(
                f"Process LOCAL_RANK={ctx.local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                "start at most one process per GPU (torchrun --nproc_per_node=<GPUs>)."
            )
        torch.cuda.set_device(ctx.local_rank)
        dev = torch.device("cuda", ctx.local_rank)
    else:
        dev = torch.device("cpu")
    if dist.is_initialized():
        ctx.backend = str(dist.get_backend())
    else:
        ctx.backend = "nccl" if cuda else "gloo"
        kw: dict[str, Any] = {"device_id": dev} if cuda else {}
        dist.init_process_group(ctx.backend, rank=ctx.rank, world_size=ctx.world_size, **kw)
        ctx.owns_group = True
    return ctx, dev


def cleanup(ctx: DistContext) -> None:
    """Destroy the process group if :func:`setup` created it.

    All ranks meet at a barrier first: a rank that tears gloo down while a peer still talks to it
    makes the peer abort on exit ("terminate called without an active exception").
    """
    if ctx.owns_group and dist.is_initialized():
        with contextlib.suppress(Exception):  # a peer that already failed must not hide the real error
            dist.barrier()
        dist.destroy_process_group()
        ctx.owns_group = False


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op in a single process)."""
    if ctx.enabled:
        dist.barrier()


def broadcast_object(ctx: DistContext, obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` (any picklable value) on every rank; ``obj`` itself in a single process."""
    if not ctx.enabled:
        return obj
    box = [obj if ctx.rank == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_sum(ctx: DistContext, array: np.ndarray, device: torch.device) -> np.ndarray:
    """Element-wise sum of ``array`` over all ranks (same shape on each), returned as float64 or int64.

    Integers are summed as int64 (exact confusion matrices), floats as float64. ``device`` is the
    tensor device the backend needs (``cuda:N`` for nccl, ``cpu`` for gloo).
    """
    a = np.asarray(array)
    if not ctx.enabled:
        return a
    dtype = torch.int64 if np.issubdtype(a.dtype, np.integer) else torch.float64
    t = torch.as_tensor(a, dtype=dtype).to(device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().numpy()


def all_any(ctx: DistContext, flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is True on any rank (e.g. a cancel request seen by one process)."""
    if not ctx.enabled:
        return bool(flag)
    return bool(all_reduce_sum(ctx, np.array([int(bool(flag))], dtype=np.int64), device)[0] > 0)


def shard(n: int, ctx: DistContext) -> list[int]:
    """Indices ``rank, rank + world, ...`` of ``n`` items: disjoint shards covering every item once.

    Unlike :class:`torch.utils.data.DistributedSampler` nothing is padded or repeated, so metrics
    summed over the shards (validation confusion matrix) count each pixel exactly once.
    """
    return list(range(ctx.rank, n, ctx.world_size))


__all__ = [
    "DistContext",
    "env_context",
    "setup",
    "cleanup",
    "barrier",
    "broadcast_object",
    "all_reduce_sum",
    "all_any",
    "shard",
]
