"""Train Model: :func:`train_model` and the :class:`Trainer` behind it.

:func:`train_model` is the QGIS-free body of ``deeplandcover:trainmodel`` (ArcGIS "Train Deep Learning
Model"); the methods and their sources are listed in :mod:`core.training`. A run is a :class:`Trainer`
whose steps follow torchgeo's ``trainers/base.py`` ``BaseTask`` (``configure_models``,
``configure_losses``, ``configure_optimizers``), without Lightning: :meth:`~Trainer.prepare_data` ->
:meth:`~Trainer.build_model` -> :meth:`~Trainer.build_loss` -> :meth:`~Trainer.restore` ->
:meth:`~Trainer.build_optimizer` -> :meth:`~Trainer.fit` (per epoch :meth:`~Trainer.fit_epoch`,
:meth:`~Trainer.validate`, :meth:`~Trainer.end_epoch`) -> :meth:`~Trainer.finish`. The checkpoint format
is :mod:`core.training.checkpoint`'s, the log, report and output folder :mod:`core.training.report`'s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from ...models import AUX_MODELS, build_model
from ...models.fusion import AuxLoss, branches_from_sensors
from ..errors import CanceledError, InputError
from ..feedback import Feedback, NullFeedback, SubFeedback, ensure_feedback
from ..preprocessing.indices import parse_indices
from . import distributed as dist_utils
from .averaging import WeightAverage, start_average, trained_weights
from .checkpoint import Progress, apply_finetune, check_resume, load_checkpoint, make_checkpoint, save_checkpoint
from .config import TrainConfig, TrainResult
from .data import make_loader
from .finetune import EncoderFinetune
from .finish import finish_run
from .folders import build_datasets, load_folders, model_dates
from .losses import class_weights, make_loss
from .onnx_export import card_from_manifest
from .presto import PrestoFinetune, presto_params
from .report import create_output_folder, epoch_message, epoch_row, remove_empty_folders, write_log
from .steps import (
    evaluate,
    is_oom,
    lr_range_test,
    make_scheduler,
    monitored_score,
    seed_all,
    train_epoch,
    use_channels_last,
    validation_metrics,
)
from .threads import ThreadPolicy


class Trainer:
    """One training run on chip folders, in named steps (see the module docstring).

    Only rank 0 writes files. The output folder is created when the epoch loop starts; a run that fails
    before its first checkpoint removes the folders it created, so it leaves nothing behind.

    Args:
        chip_folders, out_dir, config: as :func:`train_model`.
        feedback: progress, cancel and log (a :class:`NullFeedback` on ranks other than 0).
        ctx: the (possibly distributed) process context; device: this process's torch device.
    """

    def __init__(
        self,
        chip_folders: Sequence[str | os.PathLike],
        out_dir: str | os.PathLike,
        config: TrainConfig,
        feedback: Feedback,
        ctx: dist_utils.DistContext,
        device: torch.device,
    ) -> None:
        self.chip_folders = list(chip_folders)
        self.out = Path(out_dir)
        self.config = config
        self.fb = feedback
        self.ctx = ctx
        self.device = device
        #: mixed precision and pinned host memory: on CUDA only
        self.amp = device.type == "cuda"
        self.best_path, self.last_path = self.out / "model.pt", self.out / "last.pt"
        self.log_path = self.out / "training_log.csv"
        self._created: list[Path] = []
        self._speed: tuple[float | None, int | None] = (None, None)  # chips/s and threads of the last epoch
        self._busy_warned = False
        self.ema: WeightAverage | None = None  # the weight average (config.ema_decay), started by restore()

    def run(self) -> TrainResult:
        """All the steps; the :class:`TrainResult`."""
        self.prepare_data()
        self.build_model()
        self.build_loss()
        resumed = self.restore()
        self.build_optimizer(resumed)
        try:
            self.fit(resumed)
        except BaseException:
            remove_empty_folders(self._created)  # nothing is left of a run that wrote no checkpoint
            raise
        return self.finish()

    # ------------------------------------------------------------------------------ set-up
    def prepare_data(self) -> None:
        """Threads and seeds; read and cross-check the chip folders; split them into the datasets."""
        cfg, ctx, fb = self.config, self.ctx, self.fb
        share = max(1, (os.cpu_count() or 1) // ctx.local_world_size)
        # Under DDP the node's other ranks would look like busy programs: each rank keeps its share.
        self.thread_policy = ThreadPolicy(
            cfg.num_threads or (share if ctx.enabled else None), share, measure=not ctx.enabled
        )
        self.thread_policy.apply()
        seed_all(cfg.seed + ctx.rank)
        loaded, self.manifest = load_folders(self.chip_folders, cfg.architecture)
        self.classes = list(self.manifest.classes)
        absent = [c.name for c in loaded[0][1].classes if c.value not in self.manifest.class_values]
        if absent:
            fb.warning(f"Classes without any labelled pixel are left out of the model: {', '.join(absent)}.")
        self.indices = parse_indices(cfg.indices)
        plan = PrestoFinetune if cfg.architecture == "presto" else EncoderFinetune
        self.finetune, self.manifest = plan.prepare(cfg, self.manifest, self.indices, fb)
        self.train_ds, self.val_ds = build_datasets(loaded, self.manifest, cfg)
        m = self.manifest
        self.in_channels = (len(m.bands) + len(self.indices)) * (2 if m.kind == "pair" else 1)
        fb.info(
            f"{len(self.train_ds)} training and {len(self.val_ds)} validation chips ({m.kind}, {self.in_channels} "
            f"channels{f', {m.num_time_steps} dates' if m.kind == 'sequence' else ''}, {len(self.classes)} classes), "
            f"device {self.device}, {self.thread_policy.threads} CPU threads"
            + (
                f", DDP over {ctx.world_size} processes ({ctx.backend}, batch {cfg.batch_size} per process)."
                if ctx.enabled
                else "."
            )
        )

    def build_model(self) -> None:
        """The network on the device, its constructor arguments and its model card."""
        cfg, m = self.config, self.manifest
        params = presto_params(m, cfg, self.indices) if cfg.architecture == "presto" else cfg.model_params()
        if cfg.architecture == "two_branch_unet" and "branches" not in params:
            params["branches"] = branches_from_sensors(m.sources["sensor_bands"], m.bands, len(self.indices))
        self.params = params
        self.model = build_model(cfg.architecture, self.in_channels, len(self.classes), **params)
        if self.finetune:
            self.finetune.load(self.model, self.fb, resumed=bool(cfg.resume))
        self.model = use_channels_last(self.model.to(self.device), self.device, m.kind == "sequence")
        self.card = card_from_manifest(m, cfg.architecture, params, indices=self.indices, dates=model_dates(m, cfg))

    def build_loss(self) -> None:
        """The loss, class-weighted by the training chips' labelled pixels as ``config.class_weights`` says."""
        cfg = self.config
        counts = np.sum([d.class_counts(len(self.classes)) for d in self.train_ds.datasets], axis=0)
        w = class_weights(counts, cfg.class_weights)
        weight = torch.as_tensor(w, device=self.device) if w is not None else None
        self.loss_fn = make_loss(cfg.loss, weight, cfg.jaccard_alpha, cfg.focal_gamma)
        if cfg.architecture in AUX_MODELS:  # (main, aux) in training mode: 0.7 main + 0.3 mean(aux), Cherif et al.
            self.loss_fn = AuxLoss(self.loss_fn, float(self.params.get("main_weight", 0.7)))

    def restore(self) -> dict[str, Any] | None:
        """Load the resume checkpoint's weights and return it, or initialise from the fine-tune model; then
        start the weight average (``config.ema_decay``)."""
        cfg, ck = self.config, None
        if cfg.resume:
            ck = load_checkpoint(cfg.resume)
            check_resume(ck, cfg.architecture, self.in_channels, len(self.classes))
            self.model.load_state_dict(trained_weights(ck))
        elif cfg.finetune:
            apply_finetune(self.model, load_checkpoint(cfg.finetune), cfg.architecture, self.fb)
        self.ema = start_average(self.model, cfg.ema_decay, ck)
        return ck

    def build_loaders(self) -> None:
        """Training and validation loaders at the current batch size."""
        batch = self.progress.batch_size
        self.train_dl = make_loader(self.train_ds, batch, True, self.config, self.amp, self.ctx)
        self.val_dl = make_loader(self.val_ds, batch, False, self.config, self.amp, self.ctx)

    def build_optimizer(self, resumed: dict[str, Any] | None) -> None:
        """Loaders, the learning rate (LR range test when none), DDP, AdamW, the schedule, the AMP scaler."""
        cfg, ctx = self.config, self.ctx
        self.progress = Progress.from_checkpoint(resumed) if resumed else Progress(cfg.lr, cfg.batch_size)
        self.build_loaders()
        if self.progress.lr is None:
            self.progress.lr = self._find_lr()
        self._wrap()
        lr = self.progress.lr
        params = self.finetune.param_groups(self.model, lr) if self.finetune else self.model.parameters()
        self.opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
        self.mode = "min" if cfg.monitor == "val_loss" else "max"
        self.sched = make_scheduler(self.opt, cfg, self.mode)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        if self.ema is not None:
            self.ema.follow(self.opt)
        if resumed:
            self.opt.load_state_dict(resumed["optimizer"])
            self.sched.load_state_dict(resumed["scheduler"])
            torch.set_rng_state(resumed["torch_rng"])
            if ctx.rank > 0:  # rank 0 continues the saved random stream; the others get their own
                seed_all(cfg.seed + ctx.rank + 7919 * self.progress.epoch)
            self.fb.info(f"Resuming after epoch {self.progress.epoch} (best epoch {self.progress.best_epoch}).")

    def _wrap(self) -> None:
        """``self.net``: the model, or under DDP its wrapper (rank 0's weights and buffers broadcast to every rank).

        Called again when the encoder is unfrozen: DDP synchronises only the parameters that had a gradient
        when it was built.
        """
        self.net: torch.nn.Module = self.model
        if self.ctx.enabled:
            self.net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )

    def _find_lr(self) -> float:
        """LR range test on rank 0's shard, before DDP wraps the model; the other ranks wait for its result."""
        lr = None
        if self.ctx.is_main:
            lr = lr_range_test(
                self.model,
                self.train_dl,
                self.loss_fn,
                self.device,
                self.config.lr_finder_steps,
                feedback=SubFeedback(self.fb, 0, 5),
            )
            self.fb.info(f"LR range test: learning rate {lr:.2e}.")
        return float(dist_utils.broadcast_object(self.ctx, lr))

    # ---------------------------------------------------------------------------- the loop
    def fit(self, resumed: dict[str, Any] | None = None) -> None:
        """The epoch loop: train, validate, keep the best checkpoint; stop early, at the last epoch or on cancel."""
        if self.ctx.is_main:
            self._created = create_output_folder(self.out)
            if resumed and not self.best_path.exists():
                save_checkpoint(self.best_path, resumed)
        for epoch in range(self.progress.epoch + 1, self.config.epochs + 1):
            if self.progress.bad_epochs >= self.config.patience:
                break
            t0 = time.perf_counter()
            if self.finetune and self.finetune.at_epoch(self.model, epoch, self.progress.batch_size, self.fb):
                self._wrap()
            train_loss = self.fit_epoch(epoch)
            metrics = self.validate()
            self.end_epoch(epoch, train_loss, metrics, time.perf_counter() - t0)

    def fit_epoch(self, epoch: int) -> float:
        """One training epoch (its mean loss); on CUDA out-of-memory it is retried with half the batch."""
        cfg = self.config
        efb = SubFeedback(self.fb, 5 + 87 * (epoch - 1) / cfg.epochs, 5 + 87 * epoch / cfg.epochs)
        while True:
            try:
                model_step = (self.net, self.train_dl, self.loss_fn, self.opt, self.scaler, self.device)
                t0 = time.perf_counter()
                loss = train_epoch(*model_step, efb, self.amp, self.ctx, epoch, self.thread_policy)
                chips = len(self.train_dl.sampler) * self.ctx.world_size
                self._speed = (chips / max(time.perf_counter() - t0, 1e-9), self.thread_policy.threads)
                return loss
            except CanceledError:
                raise CanceledError(self._canceled(f"during epoch {epoch}")) from None
            except RuntimeError as e:
                if not is_oom(e):
                    raise
                self._halve_batch(epoch, e)

    def _halve_batch(self, epoch: int, error: RuntimeError) -> None:
        """After an out-of-memory error: halve the batch and rebuild the loaders, or raise when that cannot help."""
        p = self.progress
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.ctx.enabled:  # the ranks cannot agree on a retry mid-epoch
            raise InputError(
                f"Rank {self.ctx.rank} ran out of GPU memory with batch size {p.batch_size} per process; "
                "start again with a smaller batch size (or tile size / model)."
            ) from error
        if p.batch_size <= 1:
            raise InputError(
                "The GPU ran out of memory even with batch size 1; use a smaller tile size, a "
                "smaller model (fewer base filters / a lighter backbone) or the CPU."
            ) from error
        p.batch_size //= 2
        self.fb.warning(f"Out of memory: retrying epoch {epoch} with batch size {p.batch_size}.")
        self.build_loaders()

    def validate(self, amp: bool | None = None, model: torch.nn.Module | None = None) -> dict[str, Any]:
        """Validation metrics (:func:`core.training.steps.validation_metrics`) of ``model``; None: the current
        weights (their average when ``config.ema_decay`` is set)."""
        amp = self.amp if amp is None else amp
        model = model if model is not None else self.ema.module if self.ema is not None else self.model
        val_loss, cm = evaluate(model, self.val_dl, self.loss_fn, self.device, len(self.classes), amp, self.ctx)
        return validation_metrics(cm, val_loss, self.classes)

    def end_epoch(self, epoch: int, train_loss: float, metrics: dict[str, Any], seconds: float) -> None:
        """Record the epoch, step the schedule, track the best epoch, log, save the checkpoints, check cancel."""
        cfg, p = self.config, self.progress
        names = [c.name for c in self.classes]
        lr = self.opt.param_groups[0]["lr"]
        row = epoch_row(epoch, train_loss, metrics, lr, p.batch_size, seconds, names, *self._speed)
        p.history.append(row)
        p.epoch = epoch
        if isinstance(self.sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.sched.step(row["val_loss"] if self.mode == "min" else row[cfg.monitor])
        else:
            self.sched.step()
        improved = p.record(epoch, monitored_score(row, cfg.monitor), cfg.min_delta)
        # the metrics are all-reduced, so the ranks agree already; rank 0's decision is made binding
        improved, p.best_score, p.best_epoch, p.bad_epochs = dist_utils.broadcast_object(
            self.ctx, (improved, p.best_score, p.best_epoch, p.bad_epochs)
        )
        self.fb.info(epoch_message(row, cfg.epochs, names, improved))
        busy = self.thread_policy.busy_message()
        if busy and not self._busy_warned:
            self.fb.warning(busy)
        self._busy_warned = busy is not None
        if self.ctx.is_main:
            ck = self.checkpoint()
            if improved:
                save_checkpoint(self.best_path, ck)
            save_checkpoint(self.last_path, ck)
            write_log(self.log_path, p.history, names)
        if dist_utils.all_any(self.ctx, self.fb.is_canceled(), self.device):
            raise CanceledError(self._canceled(f"after epoch {epoch}"))
        if p.bad_epochs >= cfg.patience:
            self.fb.info(
                f"Early stopping: no improvement of {cfg.monitor} larger than {cfg.min_delta} for "
                f"{p.bad_epochs} epochs."
            )

    def checkpoint(self) -> dict[str, Any]:
        """The checkpoint of the current state (:func:`core.training.checkpoint.make_checkpoint`), with the
        averaged weights when averaging (:meth:`core.training.averaging.WeightAverage.add_to`)."""
        sizes = {"in_channels": self.in_channels, "num_classes": len(self.classes), "arch_params": self.params}
        ck = make_checkpoint(
            self.model, self.opt, self.sched, self.progress, **sizes, config=self.config, card=self.card
        )
        return self.ema.add_to(ck) if self.ema is not None else ck

    def _canceled(self, when: str) -> str:
        return (
            f"Training canceled {when}. The best model so far (epoch {self.progress.best_epoch}) is in "
            f"{self.best_path}; resume from {self.last_path}."
        )

    # ------------------------------------------------------------------------------ finish
    def finish(self) -> TrainResult:
        """Reload the best checkpoint, validate it, export ONNX with its card, write the report (rank 0 writes).

        See :func:`core.training.finish.finish_run`.
        """
        return finish_run(self)


def train_model(
    chip_folders: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: TrainConfig,
    feedback: Feedback | None = None,
) -> TrainResult:
    """Train a segmentation model on chip folders, export it to ONNX and write the report.

    Args:
        chip_folders: one or more chip folders (same bands, classes and kind).
        out_dir: output folder; receives ``model.pt`` (best checkpoint), ``last.pt``, ``model.onnx``
            (softmax output, model card in metadata), ``training_log.csv``, ``report.html`` + PNGs.
            It is created when the first epoch starts; a run that fails before the first checkpoint
            removes the folders it created (a folder that existed is left as it was).
        config: the training parameters.
        feedback: progress (LR test 0-5 %, epochs 5-92 %, export 92-100 %), cancel and log.

    Returns:
        The :class:`TrainResult`.

    Raises:
        ChipFolderError, BandMismatchError: unusable or inconsistent chip folders, an unreadable chip.
        InputError: invalid configuration, architecture/time-step mismatch, too few chips or blocks
            for the validation split, CUDA out of memory even at batch size 1.
        ModelFileError: unreadable resume/fine-tune checkpoint, or a failed ONNX export.
        CanceledError: the user canceled; ``model.pt`` keeps the best epoch so far and ``last.pt``
            the last finished one (resume from it).

    Distributed training: under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set) every process
    calls this function; it joins the process group (:mod:`core.training.distributed`: nccl on CUDA, gloo
    on CPU), wraps the model in DistributedDataParallel, gives each rank its share of the training chips
    (``DistributedSampler``; ``batch_size`` is per process) and of the validation chips (confusion
    matrices all-reduced), seeds each rank with ``seed + rank`` and broadcasts rank 0's learning rate
    and early-stopping decisions. Only rank 0 writes files (``out_dir`` on rank 0's machine); every
    rank returns the same metrics. Without those variables the run is the single-process one.
    """
    fb = ensure_feedback(feedback)
    config.validate()
    ctx, device = dist_utils.setup(config.device)
    try:
        return Trainer(chip_folders, out_dir, config, fb if ctx.is_main else NullFeedback(), ctx, device).run()
    finally:
        dist_utils.cleanup(ctx)
