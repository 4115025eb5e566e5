"""The trainer's steps that need none of its state: one training epoch, evaluation and its scores,
the LR range test, the LR schedules, seeding.

Validation scores come from Compute Accuracy's own functions (:func:`core.assessment.metrics.accuracy_scores`
on a confusion matrix counted on the device with :func:`confusion_counts`), so the training report and
Compute Accuracy agree on the same pixels.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..assessment.metrics import accuracy_scores
from ..classes import ClassInfo
from ..errors import CanceledError, InputError
from ..feedback import Feedback, ensure_feedback
from . import distributed as dist_utils
from .config import TrainConfig
from .threads import ThreadPolicy


def seed_all(seed: int) -> None:
    """Seed Python's, numpy's and torch's global random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def is_oom(e: BaseException) -> bool:
    """True for a CUDA (or other device) out-of-memory error."""
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


@dataclass(frozen=True)
class StepSetup:
    """How a batch runs, the same for training, evaluation and the LR range test.

    Attributes:
        loss_fn: ``loss_fn(logits, target) -> scalar tensor``; logits ``(B, K, H, W)`` float (or a model's
            ``(main, aux)`` pair in training mode), target ``(B, H, W)`` int64 with 255 ignored.
        device: the torch device batches are moved to.
        amp: mixed precision (``torch.autocast``); on CUDA only.
        ctx: the (possibly distributed) process context; None: one process.
        threads: re-checks the machine's load between training batches
            (:class:`~core.training.threads.ThreadPolicy`); None: no re-check.
    """

    loss_fn: Callable[..., torch.Tensor]
    device: torch.device
    amp: bool = False
    ctx: dist_utils.DistContext | None = None
    threads: ThreadPolicy | None = None


@dataclass
class Optimisation:
    """The optimiser, its per-epoch learning-rate schedule and AMP's gradient scaler: built, checkpointed and
    restored together (:func:`core.training.checkpoint.make_checkpoint`)."""

    optimizer: torch.optim.Optimizer
    scheduler: Any  # a torch.optim.lr_scheduler: LambdaLR or ReduceLROnPlateau (make_scheduler)
    scaler: torch.amp.GradScaler


def halved_batch(batch_size: int, ctx: dist_utils.DistContext, device: torch.device, error: RuntimeError) -> int:
    """The batch size to retry an epoch with after an out-of-memory ``error`` (half of ``batch_size``).

    Raises:
        InputError: under DDP (the ranks cannot agree on a retry mid-epoch), or at batch size 1.
    """
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if ctx.enabled:
        raise InputError(
            f"Rank {ctx.rank} ran out of GPU memory with batch size {batch_size} per process; "
            "start again with a smaller batch size (or tile size / model)."
        ) from error
    if batch_size <= 1:
        raise InputError(
            "The GPU ran out of memory even with batch size 1; use a smaller tile size, a "
            "smaller model (fewer base filters / a lighter backbone) or the CPU."
        ) from error
    return batch_size // 2


def lr_range_test(
    model: torch.nn.Module,
    loader: DataLoader,
    setup: StepSetup,
    steps: int = 30,
    lr_bounds: tuple[float, float] = (1e-6, 1.0),
    feedback: Feedback | None = None,
) -> float:
    """LR range test (Smith, "Cyclical Learning Rates", WACV 2017): pick a learning rate.

    Raises the LR exponentially from ``lr_bounds[0]`` to ``lr_bounds[1]`` over ``steps`` Adam steps (full
    precision, ``setup.amp`` is not used), smooths the loss, and returns one tenth of the LR at the
    smoothed-loss minimum (clamped to [1e-5, 1e-2]). The model's weights are restored afterwards.
    """
    fb = ensure_feedback(feedback)
    (lr_min, lr_max), loss_fn, device = lr_bounds, setup.loss_fn, setup.device
    state = copy.deepcopy(model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=lr_min)
    mult = (lr_max / lr_min) ** (1 / max(steps - 1, 1))
    lrs, losses, avg, best = [], [], 0.0, float("inf")
    model.train()
    it = iter(loader)
    for i in range(steps):
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(loader)
            x, y = next(it)
        lr = lr_min * mult**i
        for g in opt.param_groups:
            g["lr"] = lr
        loss = loss_fn(model(x.to(device)), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        avg = 0.7 * avg + 0.3 * float(loss.detach())
        sm = avg / (1 - 0.7 ** (i + 1))
        lrs.append(lr)
        losses.append(sm)
        best = min(best, sm)
        fb.set_progress(100 * (i + 1) / steps)
        if not math.isfinite(sm) or sm > 4 * best:
            break
    model.load_state_dict(state)
    lr = lrs[int(np.argmin(losses))] / 10 if losses else 1e-3
    return float(min(max(lr, 1e-5), 1e-2))


def use_channels_last(model: torch.nn.Module, device: torch.device, sequence: bool) -> torch.nn.Module:
    """Channels-last weights for a 4-D-input model on the CPU (1.24x faster steps, BENCHMARKS.md); else as is.

    Only the weights change layout: PyTorch's CPU convolutions then run channels-last for contiguous
    inputs too (measured as fast as converting the inputs as well). Sequence models take 5-D inputs and
    are left as they are; CUDA is left as it is (not measured).
    """
    if device.type == "cpu" and not sequence:
        return model.to(memory_format=torch.channels_last)
    return model


def train_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    setup: StepSetup,
    optim: Optimisation,
    fb: Feedback,
    epoch: int = 0,
) -> float:
    """One training epoch; returns the mean loss (over all ranks under DDP).

    Checks cancel between batches in a single process; under DDP the ranks must stay in step, so
    cancel is checked (and agreed on) after the epoch by the caller. ``setup.threads`` re-checks the
    machine's load between batches. ``model``: the network or its DDP wrapper.
    """
    model.train()
    ctx, device, loss_fn, threads = setup.ctx, setup.device, setup.loss_fn, setup.threads
    opt, scaler = optim.optimizer, optim.scaler
    ddp = ctx is not None and ctx.enabled
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)  # a new shuffle per epoch, the same on every rank
    total, n = 0.0, 0
    for i, (x, y) in enumerate(loader):
        if not ddp and fb.is_canceled():
            raise CanceledError("Canceled by the user.")
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=setup.amp):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        total += float(loss.detach()) * len(x)
        n += len(x)
        fb.set_progress(100 * (i + 1) / max(len(loader), 1))
        if threads is not None:
            threads.update()
    if ddp:
        total, n = dist_utils.all_reduce_sum(ctx, np.array([total, n], dtype=np.float64), device)
    return float(total / max(n, 1))


def confusion_counts(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(K, K) int64`` confusion matrix of class indices (rows target, columns prediction), on their device.

    ``pred`` and ``target`` are int64 tensors of one shape, class indices ``0..K-1``; targets outside
    that range (:data:`IGNORE_INDEX`) are skipped.
    """
    keep = (target >= 0) & (target < num_classes)
    codes = target[keep] * num_classes + pred[keep]
    return torch.bincount(codes, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, loader: DataLoader, setup: StepSetup, num_classes: int
) -> tuple[float, np.ndarray]:
    """Mean validation loss and the ``(K, K)`` confusion matrix (ignored pixels excluded), int64.

    Under DDP (``ctx.enabled``) each rank evaluates its shard of the validation chips and the loss
    sums, chip counts and confusion matrices are all-reduced, so every rank returns the same values.
    """
    model.eval()
    ctx, device, loss_fn = setup.ctx, setup.device, setup.loss_fn
    counts = torch.zeros((num_classes, num_classes), dtype=torch.int64, device=device)
    total, n = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, enabled=setup.amp):
            logits = model(x)
        total += float(loss_fn(logits.float(), y)) * len(x)
        n += len(x)
        counts += confusion_counts(logits.argmax(1), y, num_classes)
    cm = counts.cpu().numpy()  # one copy per validation pass
    if ctx is not None and ctx.enabled:
        cm = dist_utils.all_reduce_sum(ctx, cm, device).astype(np.int64)
        total, n = dist_utils.all_reduce_sum(ctx, np.array([total, n], dtype=np.float64), device)
    return float(total / max(n, 1)), cm


def validation_metrics(cm: np.ndarray, val_loss: float, classes: Sequence[ClassInfo]) -> dict[str, Any]:
    """The training report's metrics of a validation confusion matrix, scored as Compute Accuracy scores it.

    Args:
        cm: ``(K, K)`` int64 confusion matrix of class indices (rows reference, columns prediction).
        val_loss: the mean validation loss.
        classes: the K classes of the model outputs, in index order.

    Returns:
        ``val_loss``; ``oa``, ``miou``, ``f1`` (macro F1) and ``kappa`` of
        :func:`core.assessment.metrics.accuracy_scores` (means over the classes whose score is defined;
        ``oa``, ``miou`` and ``f1`` are 0.0 when there is no validation pixel, ``kappa`` may be None);
        ``iou_per_class``, ``f1_per_class``, ``precision_per_class``, ``recall_per_class`` (None where
        undefined, e.g. the precision of a class never predicted), ``support`` (reference pixels per
        class), ``confusion_matrix`` (K x K list) and ``class_names``.
    """
    rep = accuracy_scores(cm, [c.value for c in classes], [c.name for c in classes])
    return {
        "val_loss": val_loss,
        "oa": rep.overall_accuracy or 0.0,
        "miou": rep.mean_iou or 0.0,
        "f1": rep.macro_f1 or 0.0,
        "kappa": rep.kappa,
        "iou_per_class": rep.iou,
        "f1_per_class": rep.f1,
        "precision_per_class": rep.precision,
        "recall_per_class": rep.recall,
        "support": rep.support,
        "confusion_matrix": rep.matrix.tolist(),
        "class_names": rep.class_names,
    }


def make_scheduler(opt: torch.optim.Optimizer, config: TrainConfig, mode: str):
    """The per-epoch LR schedule of ``config.schedule`` (see :class:`TrainConfig`); ``mode`` ``min`` or ``max``."""
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode=mode, factor=0.5, patience=max(1, config.patience // 2)
        )
    warm, total = config.warmup_epochs, config.epochs

    def factor(e: int) -> float:  # e = finished epochs; the factor applies to epoch e + 1
        if e < warm:
            return (e + 1) / (warm + 1)
        t = (e - warm) / max(total - warm, 1)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def monitored_score(row: dict[str, Any], monitor: str) -> float:
    """The monitored value of an epoch's row as "higher is better"."""
    return -row["val_loss"] if monitor == "val_loss" else row[monitor]
