"""Train Model: the training loop over chip folders, validation on spatial blocks, checkpoints, export.

:func:`train_model` is the QGIS-free body of ``deeplandcover:trainmodel`` (ArcGIS "Train Deep
Learning Model"). Methods: U-Net / U-Net+ConvLSTM / CE + log-Jaccard loss / dihedral augmentation from
seed 002_5f5c797ac4c9541b.txt, nodata-masked loss from seed 000_92b8837726c3be0f.txt, weighted
cross-entropy from seed 001_d6382e1c23847c35.txt, LR range test (Smith, WACV 2017), median
frequency balancing (Eigen & Fergus, 2015), focal loss (Lin et al., 2017).

Checkpoint format (``model.pt`` = best epoch, ``last.pt`` = last finished epoch), a dict loadable
with ``torch.load(path, weights_only=True)`` (tensors and primitive types only)::

    format "deeplandcover-checkpoint", version 1, architecture str, in_channels int,
    num_classes int, arch_params dict, state_dict {name: tensor}, optimizer dict, scheduler dict,
    epoch int (finished epochs), best_epoch int, best_score float, bad_epochs int, lr float,
    batch_size int, history [ {epoch, train_loss, val_loss, oa, miou, f1, lr, seconds} ],
    config dict (TrainConfig fields), card dict (ModelCard fields), torch_rng uint8 tensor.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import ConcatDataset, DataLoader, DistributedSampler, Subset

from ...models import AUX_MODELS, SEQUENCE_MODELS, AuxLoss, branches_from_sensors, build_model
from ..chips.manifest import BandStats, Manifest, load_chip_folder
from ..errors import BandMismatchError, CanceledError, ChipFolderError, InputError, ModelFileError
from ..feedback import Feedback, NullFeedback, SubFeedback, ensure_feedback
from ..preprocessing.indices import parse_indices
from . import distributed as dist_utils
from .data import ChipDataset, split_by_block
from .losses import class_weights, confusion, make_loss, scores
from .onnx_export import card_from_manifest, export_onnx

CKPT_FORMAT = "deeplandcover-checkpoint"
ARCHITECTURES = ("unet", "deeplabv3plus", "unet_convlstm", "unet_early_fusion", "two_branch_unet")


@dataclass
class TrainConfig:
    """Training parameters (the Train Model dialog).

    Attributes:
        architecture: ``unet``, ``deeplabv3plus``, ``unet_convlstm`` (sequence chips) or
            ``unet_early_fusion`` (two-date chips).
        epochs: maximum epochs. batch_size: chips per step (halved automatically on CUDA OOM).
        lr: learning rate; None runs an LR range test first (Smith 2017).
        val_fraction: share of chips (whole spatial blocks) for validation, (0, 1).
        patience, min_delta: early stopping: stop after ``patience`` epochs without an improvement of
            the monitored value larger than ``min_delta``.
        monitor: ``val_loss`` (lower is better), ``miou`` or ``f1`` (macro F1; higher is better).
        class_weights: ``none``, ``inverse`` or ``median`` (frequency balancing).
        loss: ``ce``, ``ce_jaccard`` (with ``jaccard_alpha``) or ``focal`` (``focal_gamma``).
        augment: random dihedral flips/rotations of training chips.
        seed: seeds Python, numpy and torch, the split and the shuffling.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        resume: a ``model.pt``/``last.pt`` to continue from (same architecture and data).
        finetune: a previous ``model.pt`` (or the ``model.onnx`` with its ``model.pt`` beside it)
            whose weights initialise the model.
        num_workers: DataLoader worker processes (0 = load in the main process; chips are cached).
        num_threads: torch CPU threads; None = every core (``os.cpu_count()``).
        base_filters, depth: U-Net arguments; backbone: DeepLab encoder; arch_params: extra ones.
        lr_finder_steps: iterations of the LR range test.
        schedule: ``plateau`` (halve the LR when the monitored value stalls for ``patience // 2``
            epochs) or ``cosine`` (``warmup_epochs`` of linear warm-up, then cosine annealing to 1 %
            of ``lr`` at ``epochs``; Loshchilov & Hutter, SGDR, ICLR 2017).
        warmup_epochs: linear warm-up epochs of the ``cosine`` schedule.
        indices: spectral indices appended as input channels, comma-separated (``"NDVI,NDWI"``;
            :mod:`core.indices`, seed 003); recorded in the model card, recomputed at inference.
        sequence_length: dates per sequence sample (0 = all the chips' dates); the model, its card
            and inference take this many dates.
        random_sequences: training samples draw ``sequence_length`` dates at random, sorted by time
            (seed 000); validation and the card use the fixed evenly spaced dates.
    """

    architecture: Literal["unet", "deeplabv3plus", "unet_convlstm", "unet_early_fusion", "two_branch_unet"] = "unet"
    epochs: int = 20
    batch_size: int = 8
    lr: float | None = None
    val_fraction: float = 0.2
    patience: int = 5
    min_delta: float = 0.001
    monitor: Literal["val_loss", "miou", "f1"] = "val_loss"
    class_weights: Literal["none", "inverse", "median"] = "none"
    loss: Literal["ce", "ce_jaccard", "focal"] = "ce"
    jaccard_alpha: float = 0.5
    focal_gamma: float = 2.0
    augment: bool = True
    seed: int = 42
    device: Literal["auto", "cpu", "cuda"] = "auto"
    resume: str | None = None
    finetune: str | None = None
    num_workers: int = 0
    num_threads: int | None = None
    base_filters: int = 32
    depth: int = 4
    backbone: str = "resnet18"
    arch_params: dict[str, Any] = field(default_factory=dict)
    lr_finder_steps: int = 30
    schedule: Literal["plateau", "cosine"] = "plateau"
    warmup_epochs: int = 1
    indices: str = ""
    sequence_length: int = 0
    random_sequences: bool = False

    def model_params(self) -> dict[str, Any]:
        """Constructor arguments of the chosen architecture."""
        p = {"backbone": self.backbone} if self.architecture == "deeplabv3plus" else {
            "base_filters": self.base_filters, "depth": self.depth}
        return {**p, **self.arch_params}

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first invalid field."""
        if self.architecture not in ARCHITECTURES:
            raise InputError(f"Unknown architecture {self.architecture!r}; choose one of {', '.join(ARCHITECTURES)}.")
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError("Epochs and batch size must be at least 1.")
        if self.lr is not None and not (0 < self.lr < 10):
            raise InputError(f"Learning rate {self.lr} is invalid; leave it empty to find one automatically.")
        if self.monitor not in ("val_loss", "miou", "f1"):
            raise InputError(f"Unknown monitor {self.monitor!r}; use val_loss, miou or f1.")
        if self.schedule not in ("plateau", "cosine") or self.warmup_epochs < 0:
            raise InputError(f"Unknown schedule {self.schedule!r} (use plateau or cosine) or negative warm-up epochs.")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"Unknown device {self.device!r}; use auto, cpu or cuda.")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise InputError("Device 'cuda' was asked for but PyTorch sees no CUDA GPU; choose auto or cpu.")
        parse_indices(self.indices)  # InputError naming an unknown index
        if self.sequence_length < 0:
            raise InputError(f"Sequence length must be 0 (all dates) or positive, got {self.sequence_length}.")
        if (self.sequence_length or self.random_sequences) and self.architecture not in SEQUENCE_MODELS:
            raise InputError("Sequence length and random sequences are options of time-series models; choose "
                             "unet_convlstm (and time-series chips).")
        if self.random_sequences and self.sequence_length < 1:
            raise InputError("Random sequences need a sequence length smaller than the number of chip dates "
                             "(e.g. 4 of 12 dates).")


@dataclass
class TrainResult:
    """What :func:`train_model` produced.

    Attributes:
        out_dir, model_path (``model.onnx``), checkpoint_path (``model.pt``), report_path, log_path.
        metrics: validation metrics of the best epoch (``val_loss``, ``oa``, ``miou``, ``f1``, per class).
        best_epoch, epochs_run: 1-based. lr: the learning rate used. parity: the ONNX check.
        history: one dict per epoch (as in ``training_log.csv``).
    """

    out_dir: Path
    model_path: Path
    checkpoint_path: Path
    report_path: Path
    log_path: Path
    metrics: dict[str, Any]
    best_epoch: int
    epochs_run: int
    lr: float
    parity: dict[str, Any]
    history: list[dict[str, float]]


# ---------------------------------------------------------------------------------------- data
def _pooled_stats(stats: Sequence[Sequence[BandStats]]) -> list[BandStats]:
    """Pool per-band statistics of several folders (count-weighted mean and variance)."""
    if len(stats) == 1:
        return list(stats[0])
    out = []
    for bands in zip(*stats):
        n = np.array([max(b.count, 1) for b in bands], dtype=np.float64)
        m = np.array([b.mean for b in bands])
        v = np.array([b.std**2 for b in bands])
        mean = float((n * m).sum() / n.sum())
        var = float((n * (v + (m - mean) ** 2)).sum() / n.sum())
        out.append(BandStats(bands[0].name, min(b.min for b in bands), max(b.max for b in bands), mean,
                             math.sqrt(var), int(n.sum())))
    return out


def load_folders(chip_folders: Sequence[str | os.PathLike], architecture: str) -> tuple[list[tuple[Path, Manifest]], Manifest]:
    """Read and cross-check chip folders; return them and a merged manifest (pooled statistics).

    Raises:
        ChipFolderError: no folder, or folders of different kinds, class tables or time steps.
        BandMismatchError: different band counts.
        InputError: the architecture does not fit the chips (sequence vs single vs pair).
    """
    if not chip_folders:
        raise ChipFolderError("No chip folder given; export chips with Export Training Tiles first.")
    loaded = [(Path(f), load_chip_folder(f)) for f in chip_folders]
    f0, m0 = loaded[0]
    for f, m in loaded[1:]:
        if m.kind != m0.kind:
            raise ChipFolderError(f"{f} holds {m.kind} chips but {f0} holds {m0.kind} chips; train on one kind at a time.")
        if len(m.bands) != len(m0.bands):
            raise BandMismatchError(f"{f} has {len(m.bands)} bands but {f0} has {len(m0.bands)}; export all chip folders "
                                    "from rasters with the same bands.")
        if m.class_values != m0.class_values:
            raise ChipFolderError(f"{f} has classes {m.class_values} but {f0} has {m0.class_values}; export all chip "
                                  "folders with the same class table.")
        if m.num_time_steps != m0.num_time_steps:
            raise ChipFolderError(f"{f} has {m.num_time_steps} time steps but {f0} has {m0.num_time_steps}.")
    if not m0.classes:
        raise ChipFolderError(f"{f0} has an empty class table; export the chips with labels.")
    if not any(m.chips for _, m in loaded):
        raise ChipFolderError("The chip folders hold no chips; export again with a lower minimum labelled fraction.")
    seq = m0.kind == "sequence"
    if seq != (architecture in SEQUENCE_MODELS):
        need = "unet_convlstm" if seq else "unet, deeplabv3plus or unet_early_fusion"
        raise InputError(f"Architecture {architecture} does not fit {m0.kind} chips "
                         f"({m0.num_time_steps} time step(s)); use {need}, or export the chips as "
                         f"{'single-date' if seq else 'a time series'}.")
    if architecture == "unet_early_fusion" and m0.kind != "pair":
        raise InputError("unet_early_fusion needs two-date chips (images + images2); export them with a second date, "
                         "or choose unet.")
    if architecture == "two_branch_unet" and (m0.kind != "single" or len(m0.sources.get("sensor_bands") or {}) < 2):
        raise InputError("two_branch_unet needs multi-sensor chips: export them with ADDITIONAL_SENSORS (one encoder "
                         "per sensor), or choose unet for early fusion.")
    if any((m.sources.get("sensor_bands") or {}) != (m0.sources.get("sensor_bands") or {}) for _, m in loaded[1:]):
        raise BandMismatchError("The chip folders stack different sensors (sources.sensor_bands); export them alike.")
    # A class without a single labelled pixel (a legend entry absent from this area) cannot be learnt:
    # leave it out of the model's outputs. Kept when no folder counts pixels (ArcGIS exports may not).
    totals = {c.value: sum(cc.pixel_count for _, m in loaded for cc in m.classes if cc.value == c.value)
              for c in m0.classes}
    present = [c for c in m0.classes if totals[c.value] > 0] if any(totals.values()) else list(m0.classes)
    merged = dataclasses.replace(
        m0, band_stats=_pooled_stats([m.band_stats for _, m in loaded]),
        band_stats2=_pooled_stats([m.band_stats2 for _, m in loaded]) if m0.band_stats2 else [],
        chips=[c for _, m in loaded for c in m.chips], classes=present)
    return loaded, merged


def build_datasets(loaded: list[tuple[Path, Manifest]], merged: Manifest, config: TrainConfig
                   ) -> tuple[ConcatDataset, ConcatDataset]:
    """Training and validation datasets (spatial-block split per folder, pooled normalisation).

    Spectral indices and (random) sequences of ``config`` are applied; validation always uses the
    fixed ordered sequence.
    """
    train, val = [], []
    for folder, m in loaded:
        m = dataclasses.replace(m, band_stats=merged.band_stats, band_stats2=merged.band_stats2)
        ti, vi = split_by_block(m, config.val_fraction, config.seed)
        kw = {"spectral_indices": parse_indices(config.indices), "sequence_length": config.sequence_length}
        train.append(ChipDataset(folder, m, ti, merged.class_values, augment=config.augment,
                                 random_sequences=config.random_sequences, **kw))
        val.append(ChipDataset(folder, m, vi, merged.class_values, augment=False, **kw))
    return ConcatDataset(train), ConcatDataset(val)


def _loader(ds: ConcatDataset, batch: int, shuffle: bool, config: TrainConfig, cuda: bool,
            ctx: dist_utils.DistContext | None = None) -> DataLoader:
    """Training (``shuffle``) or validation loader; under DDP each rank gets its share of the chips.

    Training under DDP: a :class:`DistributedSampler` (shuffled with ``config.seed`` and the epoch,
    padded so that every rank runs the same number of steps). Validation under DDP: disjoint shards
    (:func:`core.distributed.shard`), so the all-reduced confusion matrix counts each pixel once.
    """
    g = torch.Generator()
    g.manual_seed(config.seed)
    sampler = None
    if ctx is not None and ctx.enabled:
        if shuffle:
            sampler = DistributedSampler(ds, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                         seed=config.seed, drop_last=False)
        else:
            ds = Subset(ds, dist_utils.shard(len(ds), ctx))
    n = len(sampler) if sampler is not None else len(ds)
    return DataLoader(ds, batch_size=batch, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=config.num_workers, generator=g, pin_memory=cuda, drop_last=shuffle and n > batch,
                      persistent_workers=config.num_workers > 0)


# -------------------------------------------------------------------------------------- model
def _load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint (``.pt``; for ``.onnx`` the ``model.pt`` beside it)."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        p = p.with_suffix(".pt")
        if not p.is_file():
            raise ModelFileError(f"Fine-tuning needs the PyTorch checkpoint {p.name} that Train Model writes beside "
                                 f"{Path(path).name}; it was not found in {p.parent}.")
    if not p.is_file():
        raise ModelFileError(f"Checkpoint {p} does not exist.")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelFileError(f"{p.name} is not a readable Deep Land Cover checkpoint ({type(e).__name__}: {e}).") from e
    if not isinstance(ck, dict) or ck.get("format") != CKPT_FORMAT:
        raise ModelFileError(f"{p.name} is not a Deep Land Cover checkpoint (model.pt written by Train Model).")
    return ck


def _apply_finetune(model: torch.nn.Module, ck: dict[str, Any], architecture: str, fb: Feedback) -> None:
    if ck["architecture"] != architecture:
        raise InputError(f"The fine-tuning model is a {ck['architecture']}; choose that architecture (not {architecture}).")
    own = model.state_dict()
    keep = {k: v for k, v in ck["state_dict"].items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(keep))
    if len(keep) == 0:
        raise InputError("No layer of the fine-tuning model fits this model (different bands or sizes).")
    model.load_state_dict(keep, strict=False)
    if skipped:
        fb.warning(f"Fine-tuning: {len(skipped)} tensors re-initialised because their shapes differ "
                   f"(bands or classes changed): {', '.join(skipped[:6])}{'...' if len(skipped) > 6 else ''}")
    fb.info(f"Fine-tuning from a {ck['architecture']} ({len(keep)} tensors loaded).")


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


def lr_range_test(model: torch.nn.Module, loader: DataLoader, loss_fn, device: torch.device, steps: int = 30,
                  lr_min: float = 1e-6, lr_max: float = 1.0, feedback: Feedback | None = None) -> float:
    """LR range test (Smith, "Cyclical Learning Rates", WACV 2017): pick a learning rate.

    Raises the LR exponentially from ``lr_min`` to ``lr_max`` over ``steps`` Adam steps, smooths the
    loss, and returns one tenth of the LR at the smoothed-loss minimum (clamped to [1e-5, 1e-2]).
    The model's weights are restored afterwards.
    """
    fb = ensure_feedback(feedback)
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


# -------------------------------------------------------------------------------- epoch steps
def _run_epoch(model, loader, loss_fn, opt, scaler, device, fb: Feedback, amp: bool,
               ctx: dist_utils.DistContext | None = None, epoch: int = 0) -> float:
    """One training epoch; returns the mean loss (over all ranks under DDP).

    Checks cancel between batches in a single process; under DDP the ranks must stay in step, so
    cancel is checked (and agreed on) after the epoch by the caller.
    """
    model.train()
    ddp = ctx is not None and ctx.enabled
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)  # a new shuffle per epoch, the same on every rank
    total, n = 0.0, 0
    for i, (x, y) in enumerate(loader):
        if not ddp and fb.is_canceled():
            raise CanceledError("Canceled by the user.")
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=amp):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        total += float(loss.detach()) * len(x)
        n += len(x)
        fb.set_progress(100 * (i + 1) / max(len(loader), 1))
    if ddp:
        total, n = dist_utils.all_reduce_sum(ctx, np.array([total, n], dtype=np.float64), device)
    return float(total / max(n, 1))



@torch.no_grad()
def evaluate(model, loader, loss_fn, device, num_classes: int, amp: bool = False,
             ctx: dist_utils.DistContext | None = None) -> tuple[float, np.ndarray]:
    """Mean validation loss and the ``(K, K)`` confusion matrix (ignored pixels excluded).

    Under DDP (``ctx.enabled``) each rank evaluates its shard of the validation chips and the loss
    sums, chip counts and confusion matrices are all-reduced, so every rank returns the same values.
    """
    model.eval()
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    total, n = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, enabled=amp):
            logits = model(x)
        total += float(loss_fn(logits.float(), y)) * len(x)
        n += len(x)
        cm += confusion(logits.argmax(1).cpu().numpy(), y.cpu().numpy(), num_classes)
    if ctx is not None and ctx.enabled:
        cm = dist_utils.all_reduce_sum(ctx, cm, device).astype(np.int64)
        total, n = dist_utils.all_reduce_sum(ctx, np.array([total, n], dtype=np.float64), device)
    return float(total / max(n, 1)), cm


def _scheduler(opt: torch.optim.Optimizer, config: TrainConfig, mode: str):
    """The per-epoch LR schedule of ``config.schedule`` (see :class:`TrainConfig`)."""
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=0.5, patience=max(1, config.patience // 2))
    warm, total = config.warmup_epochs, config.epochs

    def factor(e: int) -> float:  # e = finished epochs; the factor applies to epoch e + 1
        if e < warm:
            return (e + 1) / (warm + 1)
        t = (e - warm) / max(total - warm, 1)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _score(row: dict[str, float], monitor: str) -> float:
    """Monitored value as 'higher is better'."""
    return -row["val_loss"] if monitor == "val_loss" else row[monitor]


def _save(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _write_log(path: Path, history: list[dict[str, float]], class_names: list[str]) -> None:
    cols = ["epoch", "train_loss", "val_loss", "oa", "miou", "f1", "lr", "batch_size", "seconds"]
    cols += [f"f1_{n}" for n in class_names]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for row in history:
            w.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------- driver
def train_model(chip_folders: Sequence[str | os.PathLike], out_dir: str | os.PathLike, config: TrainConfig,
                feedback: Feedback | None = None) -> TrainResult:
    """Train a segmentation model on chip folders, export it to ONNX and write the report.

    Args:
        chip_folders: one or more chip folders (same bands, classes and kind).
        out_dir: output folder; receives ``model.pt`` (best checkpoint), ``last.pt``, ``model.onnx``
            (softmax output, model card in metadata), ``training_log.csv``, ``report.html`` + PNGs.
        config: the training parameters.
        feedback: progress (LR test 0-5 %, epochs 5-92 %, export 92-100 %), cancel and log.

    Returns:
        The :class:`TrainResult`.

    Raises:
        ChipFolderError, BandMismatchError: unusable or inconsistent chip folders.
        InputError: invalid configuration, architecture/time-step mismatch, too few chips or blocks
            for the validation split, CUDA out of memory even at batch size 1.
        ModelFileError: unreadable resume/fine-tune checkpoint, or a failed ONNX export.
        CanceledError: the user canceled; ``model.pt`` keeps the best epoch so far and ``last.pt``
            the last finished one (resume from it).

    Distributed training: under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set) every process
    calls this function; it joins the process group (:mod:`core.distributed`: nccl on CUDA, gloo on
    CPU), wraps the model in DistributedDataParallel, gives each rank its share of the training chips
    (``DistributedSampler``; ``batch_size`` is per process) and of the validation chips (confusion
    matrices all-reduced), seeds each rank with ``seed + rank`` and broadcasts rank 0's learning rate
    and early-stopping decisions. Only rank 0 writes files (``out_dir`` on rank 0's machine); every
    rank returns the same metrics. Without those variables the run is the single-process one.
    """
    fb = ensure_feedback(feedback)
    config.validate()
    ctx, device = dist_utils.setup(config.device)
    try:
        return _train(chip_folders, Path(out_dir), config, fb if ctx.is_main else NullFeedback(), ctx, device)
    finally:
        dist_utils.cleanup(ctx)


def _train(chip_folders: Sequence[str | os.PathLike], out: Path, config: TrainConfig, fb: Feedback,
           ctx: dist_utils.DistContext, device: torch.device) -> TrainResult:
    """The body of :func:`train_model` once the (possibly distributed) context is set up."""
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.num_threads or max(1, (os.cpu_count() or 1) // ctx.local_world_size))
    _seed_all(config.seed + ctx.rank)
    amp = device.type == "cuda"

    loaded, merged = load_folders(chip_folders, config.architecture)
    num_classes = len(merged.classes)
    class_names = [c.name for c in merged.classes]
    absent = [c.name for c in loaded[0][1].classes if c.value not in merged.class_values]
    if absent:
        fb.warning(f"Classes without any labelled pixel are left out of the model: {', '.join(absent)}.")
    train_ds, val_ds = build_datasets(loaded, merged, config)
    indices = parse_indices(config.indices)
    in_channels = (len(merged.bands) + len(indices)) * (2 if merged.kind == "pair" else 1)
    fb.info(f"{len(train_ds)} training and {len(val_ds)} validation chips ({merged.kind}, {in_channels} channels"
            f"{f', {merged.num_time_steps} dates' if merged.kind == 'sequence' else ''}, {num_classes} classes), device {device}"
            + (f", DDP over {ctx.world_size} processes ({ctx.backend}, batch {config.batch_size} per process)." if ctx.enabled else "."))

    params = config.model_params()
    if config.architecture == "two_branch_unet" and "branches" not in params:
        params["branches"] = branches_from_sensors(merged.sources["sensor_bands"], merged.bands, len(indices))
    model = build_model(config.architecture, in_channels, num_classes, **params).to(device)
    counts = np.sum([d.class_counts(num_classes) for d in train_ds.datasets], axis=0)
    w = class_weights(counts, config.class_weights)
    weight = torch.as_tensor(w, device=device) if w is not None else None
    loss_fn = make_loss(config.loss, weight, config.jaccard_alpha, config.focal_gamma)
    if config.architecture in AUX_MODELS:  # (main, aux) in training mode: 0.7 main + 0.3 mean(aux), seed 001
        loss_fn = AuxLoss(loss_fn, float(params.get("main_weight", 0.7)))

    ck = _load_state(config.resume) if config.resume else None
    if ck is not None:
        if ck["architecture"] != config.architecture or ck["num_classes"] != num_classes or ck["in_channels"] != in_channels:
            raise InputError(f"The resume checkpoint is a {ck['architecture']} with {ck['in_channels']} channels and "
                             f"{ck['num_classes']} classes; it does not fit these chips / this architecture.")
        model.load_state_dict(ck["state_dict"])
    elif config.finetune:
        _apply_finetune(model, _load_state(config.finetune), config.architecture, fb)

    batch = int(ck["batch_size"]) if ck else config.batch_size
    train_dl = _loader(train_ds, batch, True, config, amp, ctx)
    val_dl = _loader(val_ds, batch, False, config, amp, ctx)
    lr = float(ck["lr"]) if ck else config.lr
    if lr is None:
        if ctx.is_main:  # on rank 0's shard, before DDP wraps the model; the others wait for the result
            lr = lr_range_test(model, train_dl, loss_fn, device, config.lr_finder_steps, feedback=SubFeedback(fb, 0, 5))
            fb.info(f"LR range test: learning rate {lr:.2e}.")
        lr = float(dist_utils.broadcast_object(ctx, lr))
    net = model
    if ctx.enabled:  # rank 0's weights and buffers are broadcast to every rank here
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    mode = "min" if config.monitor == "val_loss" else "max"
    sched = _scheduler(opt, config, mode)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    history: list[dict[str, float]] = list(ck["history"]) if ck else []
    start = int(ck["epoch"]) if ck else 0
    best_score = float(ck["best_score"]) if ck else -float("inf")
    best_epoch = int(ck["best_epoch"]) if ck else 0
    bad = int(ck["bad_epochs"]) if ck else 0
    if ck:
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        torch.set_rng_state(ck["torch_rng"])
        if ctx.rank > 0:  # rank 0 continues the saved random stream; the others get their own
            _seed_all(config.seed + ctx.rank + 7919 * start)
        fb.info(f"Resuming after epoch {start} (best epoch {best_epoch}).")
    card = card_from_manifest(merged, config.architecture, params, indices=indices, dates=_model_dates(merged, config))
    best_path, last_path, log_path = out / "model.pt", out / "last.pt", out / "training_log.csv"
    if ck and ctx.is_main and not best_path.exists():
        _save(best_path, ck)

    def payload(epoch: int) -> dict[str, Any]:
        return {"format": CKPT_FORMAT, "version": 1, "architecture": config.architecture, "in_channels": in_channels,
                "num_classes": num_classes, "arch_params": params, "state_dict": model.state_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "epoch": epoch,
                "best_epoch": best_epoch, "best_score": best_score, "bad_epochs": bad, "lr": lr, "batch_size": batch,
                "history": history, "config": asdict(config), "card": asdict(card), "torch_rng": torch.get_rng_state()}

    epoch = start
    for epoch in range(start + 1, config.epochs + 1):
        if bad >= config.patience:
            break
        efb = SubFeedback(fb, 5 + 87 * (epoch - 1) / config.epochs, 5 + 87 * epoch / config.epochs)
        t0 = time.perf_counter()
        while True:
            try:
                train_loss = _run_epoch(net, train_dl, loss_fn, opt, scaler, device, efb, amp, ctx, epoch)
                break
            except CanceledError:
                raise CanceledError(
                    f"Training canceled during epoch {epoch}. The best model so far (epoch {best_epoch}) is in {best_path}; "
                    f"resume from {last_path}.") from None
            except RuntimeError as e:
                if not _is_oom(e):
                    raise
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                if ctx.enabled:  # the ranks cannot agree on a retry mid-epoch
                    raise InputError(f"Rank {ctx.rank} ran out of GPU memory with batch size {batch} per process; "
                                     "start again with a smaller batch size (or tile size / model).") from e
                if batch <= 1:
                    raise InputError("The GPU ran out of memory even with batch size 1; use a smaller tile size, a "
                                     "smaller model (fewer base filters / a lighter backbone) or the CPU.") from e
                batch //= 2
                fb.warning(f"Out of memory: retrying epoch {epoch} with batch size {batch}.")
                train_dl = _loader(train_ds, batch, True, config, amp)
                val_dl = _loader(val_ds, batch, False, config, amp)
        val_loss, cm = evaluate(model, val_dl, loss_fn, device, num_classes, amp, ctx)
        s = scores(cm)
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "oa": s["oa"], "miou": s["miou"],
               "f1": s["f1"], "lr": opt.param_groups[0]["lr"], "batch_size": batch,
               "seconds": time.perf_counter() - t0, **{f"f1_{n}": v for n, v in zip(class_names, s["f1_per_class"])}}
        history.append(row)
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(val_loss if mode == "min" else s[config.monitor])
        else:
            sched.step()
        score = _score(row, config.monitor)
        improved = score > best_score + config.min_delta or best_epoch == 0
        if improved:
            best_score, best_epoch, bad = score, epoch, 0
        else:
            bad += 1
        # the metrics are all-reduced, so the ranks agree already; rank 0's decision is made binding
        improved, best_score, best_epoch, bad = dist_utils.broadcast_object(ctx, (improved, best_score, best_epoch, bad))
        fb.info(f"Epoch {epoch}/{config.epochs}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, OA {s['oa']:.3f}, "
                f"mIoU {s['miou']:.3f}, F1 {s['f1']:.3f} [" + ", ".join(f"{n} {v:.2f}" for n, v in zip(class_names, s["f1_per_class"]))
                + "]" + (" *best*" if improved else ""))
        if ctx.is_main:
            if improved:
                _save(best_path, payload(epoch))
            _save(last_path, payload(epoch))
            _write_log(log_path, history, class_names)
        if dist_utils.all_any(ctx, fb.is_canceled(), device):
            raise CanceledError(f"Training canceled after epoch {epoch}. The best model so far (epoch {best_epoch}) is "
                                f"in {best_path}; resume from {last_path}.")
        if bad >= config.patience:
            fb.info(f"Early stopping: no improvement of {config.monitor} larger than {config.min_delta} for {bad} epochs.")
    return _finish(out, model, merged, config, params, val_dl, loss_fn, device, num_classes, history, best_epoch, lr, fb,
                   ctx)


def _finish(out, model, merged, config, params, val_dl, loss_fn, device, num_classes, history, best_epoch, lr,
            fb: Feedback, ctx: dist_utils.DistContext) -> TrainResult:
    """Reload the best checkpoint, validate it, export ONNX with its card, write the report (rank 0 writes)."""
    from .report import write_report

    best = _load_state(out / "model.pt") if ctx.is_main else None
    best = dist_utils.broadcast_object(ctx, best)  # out_dir need not be shared between nodes
    model.load_state_dict(best["state_dict"])
    val_loss, cm = evaluate(model, val_dl, loss_fn, device, num_classes, ctx=ctx)
    s = scores(cm)
    metrics = {"val_loss": val_loss, **s, "confusion_matrix": cm.tolist(), "class_names": [c.name for c in merged.classes]}
    training = {"chip_folders": [str(p) for p in config_sources(val_dl)], "best_epoch": best["best_epoch"],
                "epochs_run": len(history), "lr": lr, "config": asdict(config),
                "val_metrics": {k: metrics[k] for k in ("val_loss", "oa", "miou", "f1", "f1_per_class", "iou_per_class")},
                "val_chips": int(sum(len(d) for d in _base_datasets(val_dl))),
                "val_pixels": int(cm.sum()), "world_size": ctx.world_size}
    parity_d: dict[str, Any] | None = None
    if ctx.is_main:
        card = card_from_manifest(merged, config.architecture, params, training, indices=parse_indices(config.indices),
                                  dates=_model_dates(merged, config))
        sample = next(iter(val_dl))[0][:2]
        fb.set_progress(93)
        parity = export_onnx(model, card, out / "model.onnx", sample)
        fb.info(f"ONNX export: parity with PyTorch {'passed' if parity.passed else 'FAILED'} "
                f"(max |diff| {parity.max_abs_diff:.2e}, rtol {parity.rtol}, atol {parity.atol}).")
        if not parity.passed:
            fb.warning("ONNX Runtime and PyTorch outputs differ beyond tolerance; check the report before using the model.")
        write_report(out, history, metrics, card, parity.to_dict())
        parity_d = parity.to_dict()
        fb.set_progress(100)
    parity_d = dist_utils.broadcast_object(ctx, parity_d)  # also the barrier: rank 0's files are complete
    return TrainResult(out, out / "model.onnx", out / "model.pt", out / "report.html", out / "training_log.csv", metrics,
                       int(best["best_epoch"]), len(history), lr, parity_d, history)


def _model_dates(merged: Manifest, config: TrainConfig) -> list[str] | None:
    """The dates a sequence model takes at inference: the fixed subset with ``sequence_length``, else all (None)."""
    from .data import fixed_dates

    if merged.kind != "sequence" or not 0 < config.sequence_length < merged.num_time_steps:
        return None
    return [merged.time_steps[i] for i in fixed_dates(merged.num_time_steps, config.sequence_length)]


def _base_datasets(loader: DataLoader) -> list[ChipDataset]:
    """The :class:`ChipDataset` s behind a loader (through a DDP shard ``Subset`` and ``ConcatDataset``)."""
    ds = loader.dataset
    while isinstance(ds, Subset):
        ds = ds.dataset
    return list(getattr(ds, "datasets", [ds]))


def config_sources(loader: DataLoader) -> list[Path]:
    """Chip folders behind a loader's (concatenated) dataset."""
    return [d.folder for d in _base_datasets(loader)]


# ---------------------------------------------------------------------------------------- CLI
def build_parser():
    """``argparse`` parser of the CLI: ``--chips``, ``--out`` and one option per :class:`TrainConfig` field.

    Field ``x_y`` becomes ``--x-y``; booleans get ``--x``/``--no-x``; ``Literal`` fields list their
    choices; ``arch_params`` takes JSON (``'{"dropout": 0.1}'``); ``--lr`` omitted = LR range test.
    """
    import argparse
    import json
    import typing

    ap = argparse.ArgumentParser(
        prog="python -m deeplandcover.core.training",
        description="Train a segmentation model on chip folders (Export Training Tiles) and export it to ONNX. "
                    "Run under torchrun for multi-GPU / multi-node DistributedDataParallel training.")
    ap.add_argument("--chips", nargs="+", required=True, help="chip folder(s) (same bands, classes and kind)")
    ap.add_argument("--out", required=True, help="output folder (model.onnx, model.pt, report.html ...)")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        opt = "--" + f.name.replace("_", "-")
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if typing.get_origin(hint) is Literal:
            ap.add_argument(opt, choices=list(typing.get_args(hint)), default=default, help=f"default {default}")
        elif hint is bool:
            ap.add_argument(opt, action=argparse.BooleanOptionalAction, default=default)
        elif f.name == "arch_params":
            ap.add_argument(opt, type=json.loads, default=default, help="extra architecture arguments as JSON")
        else:
            typ = hint if hint in (int, float, str) else (args[0] if args and args[0] in (int, float, str) else str)
            ap.add_argument(opt, type=typ, default=default, help=f"default {default}")
    return ap


def config_from_args(ns) -> TrainConfig:
    """The :class:`TrainConfig` of parsed CLI arguments."""
    return TrainConfig(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(TrainConfig)})


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (``python -m deeplandcover.core.training`` or ``torchrun ... -m deeplandcover.core.training``).

    Returns:
        0 on success, 2 on a user error or cancel (message on stderr), the traceback otherwise.
    """
    import json
    import sys

    from ..errors import DeepLandCoverError
    from ..feedback import PrintFeedback

    ns = build_parser().parse_args(argv)
    try:
        res = train_model(ns.chips, ns.out, config_from_args(ns), PrintFeedback())
    except DeepLandCoverError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    if dist_utils.env_context().is_main:
        print(json.dumps({"model": str(res.model_path), "checkpoint": str(res.checkpoint_path),
                          "report": str(res.report_path), "best_epoch": res.best_epoch, "epochs_run": res.epochs_run,
                          "oa": round(res.metrics["oa"], 4), "miou": round(res.metrics["miou"], 4),
                          "onnx_parity": res.parity.get("passed")}, indent=1))
    return 0

