"""Train Model: :func:`train_model` and the :class:`Trainer` behind it.

:func:`train_model` is the QGIS-free body of ``deeplandcover:trainmodel`` (ArcGIS "Train Deep Learning
Model"); the methods and their sources are listed in :mod:`core.training`. A run is a :class:`Trainer`
whose steps follow torchgeo's ``trainers/base.py`` ``BaseTask`` (``configure_models``,
``configure_losses``, ``configure_optimizers``), without Lightning. The constructor runs the set-up steps,
each returning what it makes (so every attribute is set there): :meth:`~Trainer.prepare_data` ->
:meth:`~Trainer.build_model` -> :meth:`~Trainer.build_loss` -> restore (:func:`~core.training.checkpoint.restore_weights`)
-> :meth:`~Trainer.build_optimizer`; :meth:`~Trainer.run` then :meth:`~Trainer.fit` (per epoch
:meth:`~Trainer.fit_epoch`, :meth:`~Trainer.validate`, :meth:`~Trainer.end_epoch`) and :meth:`~Trainer.finish`.
The checkpoint format is :mod:`core.training.checkpoint`'s, the log, report and output folder :mod:`core.training.report`'s.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ...models import AUX_MODELS, build_model
from ...models.fusion import AuxLoss, branches_from_sensors
from ..errors import CanceledError
from ..feedback import Feedback, NullFeedback, SubFeedback, ensure_feedback
from ..preprocessing.indices import parse_indices
from . import distributed as dist_utils
from . import steps
from .averaging import WeightAverage, start_average
from .checkpoint import NetworkSpec, Progress, load_checkpoint, make_checkpoint, restore_weights, save_checkpoint
from .config import TrainConfig, TrainResult
from .data import make_loader
from .dynamicworld_encoder import DynamicWorldEncoderSchedule
from .encoder_schedule import EncoderSchedule
from .finish import change_threshold, export_checked, single_class_warning, training_record
from .folders import TrainingSet, build_datasets, load_folders, model_dates
from .losses import class_weights, make_loss
from .onnx_export import card_from_manifest, with_training
from .presto import PrestoEncoderSchedule, presto_params
from .report import (
    EpochRun,
    create_output_folder,
    epoch_message,
    epoch_row,
    remove_empty_folders,
    write_log,
    write_report,
)
from .steps import Optimisation, StepSetup
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
        self.chip_folders, self.out = list(chip_folders), Path(out_dir)
        self.config, self.fb, self.ctx, self.device = config, feedback, ctx, device
        #: mixed precision and pinned host memory: on CUDA only
        self.amp = device.type == "cuda"
        self.best_path, self.last_path = self.out / "model.pt", self.out / "last.pt"
        self.log_path = self.out / "training_log.csv"
        self._created: list[Path] = []
        self._speed: tuple[float | None, int | None] = (None, None)  # chips/s and threads of the last epoch
        self._busy_warned = False
        # -- the set-up steps, in this order (the random streams depend on it)
        self.thread_policy: ThreadPolicy = self.start_threads()
        #: the pre-trained encoder's schedule (None without encoder weights); it sets the data's normalisation
        self.schedule: EncoderSchedule | None = None
        self.data: TrainingSet = self.prepare_data()
        self.spec = NetworkSpec(config.architecture, self.data.in_channels, len(self.data.classes), self.params())
        self.model: torch.nn.Module = self.build_model()
        #: the model card: the checkpoints' and, with the training record added, the ONNX file's
        self.card = card_from_manifest(
            self.data.manifest, config.architecture, self.spec.arch_params, indices=self.data.indices,
            dates=model_dates(self.data.manifest, config),
        )  # fmt: skip
        self.setup = StepSetup(self.build_loss(), device, self.amp, ctx, self.thread_policy)
        #: the resume checkpoint (None: a new run)
        self.resumed: dict[str, Any] | None = restore_weights(self.model, config, self.spec, feedback)
        #: the weight average (``config.ema_decay``)
        self.ema: WeightAverage | None = start_average(self.model, config.ema_decay, self.resumed)
        self.progress = (
            Progress.from_checkpoint(self.resumed) if self.resumed else Progress(config.lr, config.batch_size)
        )
        self.train_dl, self.val_dl = self.build_loaders()
        if self.progress.lr is None:
            self.progress.lr = self._find_lr()
        self.net: torch.nn.Module = self._wrapped()
        self.mode: Literal["min", "max"] = "min" if config.monitor == "val_loss" else "max"
        self.optim: Optimisation = self.build_optimizer()

    def run(self) -> TrainResult:
        """The epoch loop and the finish (the set-up ran in the constructor); the :class:`TrainResult`."""
        try:
            self.fit()
        except BaseException:
            remove_empty_folders(self._created)  # nothing is left of a run that wrote no checkpoint
            raise
        return self.finish()

    # ------------------------------------------------------------------------------ set-up
    def start_threads(self) -> ThreadPolicy:
        """The CPU thread policy, applied; the seeds of this rank."""
        cfg, ctx = self.config, self.ctx
        share = max(1, (os.cpu_count() or 1) // ctx.local_world_size)
        # Under DDP the node's other ranks would look like busy programs: each rank keeps its share.
        policy = ThreadPolicy(cfg.num_threads or (share if ctx.enabled else None), share, measure=not ctx.enabled)
        policy.apply()
        steps.seed_all(cfg.seed + ctx.rank)
        return policy

    def prepare_data(self) -> TrainingSet:
        """Read and cross-check the chip folders, prepare the encoder schedule, split the folders into datasets."""
        cfg, ctx, fb = self.config, self.ctx, self.fb
        loaded, manifest = load_folders(self.chip_folders, cfg.architecture)
        classes = list(manifest.classes)
        absent = [c.name for c in loaded[0][1].classes if c.value not in manifest.class_values]
        if absent:
            fb.warning(f"Classes without any labelled pixel are left out of the model: {', '.join(absent)}.")
        indices = parse_indices(cfg.indices)
        plan = {"presto": PrestoEncoderSchedule, "dynamicworld": DynamicWorldEncoderSchedule}.get(
            cfg.architecture, EncoderSchedule
        )
        self.schedule, manifest = plan.prepare(cfg, manifest, indices, fb)
        data = TrainingSet(manifest, classes, indices, *build_datasets(loaded, manifest, cfg))
        m = manifest
        fb.info(
            f"{len(data.train)} training and {len(data.val)} validation chips ({m.kind}, {data.in_channels} "
            f"channels{f', {m.num_time_steps} dates' if m.kind == 'sequence' else ''}, {len(classes)} classes), "
            f"device {self.device}, {self.thread_policy.threads} CPU threads"
            + (
                f", DDP over {ctx.world_size} processes ({ctx.backend}, batch {cfg.batch_size} per process)."
                if ctx.enabled
                else "."
            )
        )
        return data

    def params(self) -> dict[str, Any]:
        """The network's constructor arguments (besides channels and classes)."""
        cfg, m, indices = self.config, self.data.manifest, self.data.indices
        params = presto_params(m, cfg, indices) if cfg.architecture == "presto" else cfg.model_params()
        if cfg.architecture == "two_branch_unet" and "branches" not in params:
            params["branches"] = branches_from_sensors(m.sources["sensor_bands"], m.bands, len(indices))
        return params

    def build_model(self) -> torch.nn.Module:
        """The network of :attr:`spec` with the schedule's encoder weights, on the device."""
        s = self.spec
        model = build_model(s.architecture, s.in_channels, s.num_classes, **s.arch_params)
        if self.schedule:
            self.schedule.load(model, self.fb, resumed=bool(self.config.resume))
        return steps.use_channels_last(model.to(self.device), self.device, self.data.manifest.kind == "sequence")

    def build_loss(self) -> torch.nn.Module:
        """The loss, class-weighted by the training chips' labelled pixels as ``config.class_weights`` says."""
        cfg, n = self.config, len(self.data.classes)
        counts = np.sum([d.class_counts(n) for d in self.data.train.datasets], axis=0)
        w = class_weights(counts, cfg.class_weights)
        weight = torch.as_tensor(w, device=self.device) if w is not None else None
        loss_fn = make_loss(cfg.loss, weight, cfg.jaccard_alpha, cfg.focal_gamma)
        if cfg.architecture in AUX_MODELS:  # (main, aux) in training mode: 0.7 main + 0.3 mean(aux), Cherif et al.
            loss_fn = AuxLoss(loss_fn, float(self.spec.arch_params.get("main_weight", 0.7)))
        return loss_fn

    def build_loaders(self) -> tuple[DataLoader, DataLoader]:
        """Training and validation loaders at the current batch size."""
        batch = self.progress.batch_size
        return (
            make_loader(self.data.train, batch, True, self.config, self.amp, self.ctx),
            make_loader(self.data.val, batch, False, self.config, self.amp, self.ctx),
        )

    def build_optimizer(self) -> Optimisation:
        """AdamW, the schedule and the AMP scaler (restored when resuming)."""
        cfg, ctx, resumed, lr = self.config, self.ctx, self.resumed, self.progress.lr
        params = self.schedule.param_groups(self.model, lr) if self.schedule else self.model.parameters()
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
        optim = Optimisation(
            opt, steps.make_scheduler(opt, cfg, self.mode), torch.amp.GradScaler(self.device.type, enabled=self.amp)
        )
        if self.ema is not None:
            self.ema.follow(opt)
        if resumed:
            opt.load_state_dict(resumed["optimizer"])
            optim.scheduler.load_state_dict(resumed["scheduler"])
            torch.set_rng_state(resumed["torch_rng"])
            if ctx.rank > 0:  # rank 0 continues the saved random stream; the others get their own
                steps.seed_all(cfg.seed + ctx.rank + 7919 * self.progress.epoch)
            self.fb.info(f"Resuming after epoch {self.progress.epoch} (best epoch {self.progress.best_epoch}).")
        return optim

    def _wrapped(self) -> torch.nn.Module:
        """The model, or under DDP its wrapper (rank 0's weights and buffers broadcast to every rank).

        Made again when the encoder is unfrozen: DDP synchronises only the parameters that had a gradient
        when it was built.
        """
        if not self.ctx.enabled:
            return self.model
        return DistributedDataParallel(
            self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
        )

    def _find_lr(self) -> float:
        """LR range test on rank 0's shard, before DDP wraps the model; the other ranks wait for its result."""
        lr = None
        if self.ctx.is_main:
            n, fb = self.config.lr_finder_steps, SubFeedback(self.fb, 0, 5)
            lr = steps.lr_range_test(self.model, self.train_dl, self.setup, n, feedback=fb)
            self.fb.info(f"LR range test: learning rate {lr:.2e}.")
        return float(dist_utils.broadcast_object(self.ctx, lr))

    # ---------------------------------------------------------------------------- the loop
    def fit(self) -> None:
        """The epoch loop: train, validate, keep the best checkpoint; stop early, at the last epoch or on cancel."""
        if self.ctx.is_main:
            self._created = create_output_folder(self.out)
            if self.resumed and not self.best_path.exists():
                save_checkpoint(self.best_path, self.resumed)
        for epoch in range(self.progress.epoch + 1, self.config.epochs + 1):
            if self.progress.bad_epochs >= self.config.patience:
                break
            t0 = time.perf_counter()
            if self.schedule and self.schedule.at_epoch(self.model, epoch, self.progress.batch_size, self.fb):
                self.net = self._wrapped()
            train_loss = self.fit_epoch(epoch)
            metrics = self.validate()
            self.end_epoch(epoch, train_loss, metrics, time.perf_counter() - t0)

    def fit_epoch(self, epoch: int) -> float:
        """One training epoch (its mean loss); on CUDA out-of-memory it is retried with half the batch."""
        cfg = self.config
        efb = SubFeedback(self.fb, 5 + 87 * (epoch - 1) / cfg.epochs, 5 + 87 * epoch / cfg.epochs)
        while True:
            try:
                t0 = time.perf_counter()
                loss = steps.train_epoch(self.net, self.train_dl, self.setup, self.optim, efb, epoch)
                chips = len(self.train_dl.sampler) * self.ctx.world_size
                self._speed = (chips / max(time.perf_counter() - t0, 1e-9), self.thread_policy.threads)
                return loss
            except CanceledError:
                raise CanceledError(self._canceled(f"during epoch {epoch}")) from None
            except RuntimeError as e:
                if not steps.is_oom(e):
                    raise
                self.progress.batch_size = steps.halved_batch(self.progress.batch_size, self.ctx, self.device, e)
                self.fb.warning(f"Out of memory: retrying epoch {epoch} with batch size {self.progress.batch_size}.")
                self.train_dl, self.val_dl = self.build_loaders()

    def validate(self, amp: bool | None = None, model: torch.nn.Module | None = None) -> dict[str, Any]:
        """Validation metrics (:func:`core.training.steps.validation_metrics`) of ``model``; None: the current
        weights (their average when ``config.ema_decay`` is set)."""
        amp = self.amp if amp is None else amp
        model = model if model is not None else self.ema.module if self.ema is not None else self.model
        setup = self.setup if amp == self.setup.amp else dataclasses.replace(self.setup, amp=amp)
        val_loss, cm = steps.evaluate(model, self.val_dl, setup, len(self.data.classes))
        return steps.validation_metrics(cm, val_loss, self.data.classes)

    def end_epoch(self, epoch: int, train_loss: float, metrics: dict[str, Any], seconds: float) -> None:
        """Record the epoch, step the schedule, track the best epoch, log, save the checkpoints, check cancel."""
        cfg, p, sched = self.config, self.progress, self.optim.scheduler
        names = [c.name for c in self.data.classes]
        run = EpochRun(self.optim.optimizer.param_groups[0]["lr"], p.batch_size, seconds, *self._speed)
        row = epoch_row(epoch, train_loss, metrics, run, names)
        p.history.append(row)
        p.epoch = epoch
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(row["val_loss"] if self.mode == "min" else row[cfg.monitor])
        else:
            sched.step()
        improved = p.record(epoch, steps.monitored_score(row, cfg.monitor), cfg.min_delta)
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
        ck = make_checkpoint(self.model, self.spec, self.optim, self.progress, self.config, self.card)
        return self.ema.add_to(ck) if self.ema is not None else ck

    def _canceled(self, when: str) -> str:
        return (
            f"Training canceled {when}. The best model so far (epoch {self.progress.best_epoch}) is in "
            f"{self.best_path}; resume from {self.last_path}."
        )

    # ------------------------------------------------------------------------------ finish
    def finish(self) -> TrainResult:
        """Reload the best checkpoint, tune a change model's threshold, validate it, export ONNX with the card
        (the training record added) and write the report (rank 0 writes)."""
        ctx, fb, data = self.ctx, self.fb, self.data
        best = load_checkpoint(self.best_path) if ctx.is_main else None
        best = dist_utils.broadcast_object(ctx, best)  # out_dir need not be shared between nodes
        self.model.load_state_dict(best["state_dict"])  # the averaged weights when the run averaged them
        self.model, threshold = change_threshold(self.model, self.val_dl, self.setup, data, fb)
        metrics = self.validate(amp=False, model=self.model)
        warning = single_class_warning(metrics, self.config)
        if warning:
            fb.warning(warning)
        training = training_record(self.config, self.progress, metrics, self.val_dl, ctx, self.thread_policy)
        if self.schedule:
            training["encoder_weights"] = self.schedule.info()
        if threshold is not None:
            training["decision_threshold"] = threshold.to_dict()
        history, lr, parity = self.progress.history, self.progress.lr, None
        files = (self.out / "model.onnx", self.best_path, self.out / "report.html", self.log_path)
        if ctx.is_main:
            card, sample = with_training(self.card, training), next(iter(self.val_dl))[0][:2]
            parity = export_checked(self.model, card, files[0], sample, fb).to_dict()
            write_report(self.out, history, metrics, card, parity)
            fb.set_progress(100)
        parity = dist_utils.broadcast_object(ctx, parity)  # also the barrier: rank 0's files are complete
        return TrainResult(self.out, *files, metrics, int(best["best_epoch"]), len(history), lr, parity, history)


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

    Distributed training: under ``torchrun`` every process calls this function, as
    :mod:`core.training.distributed` describes; only rank 0 writes files, every rank returns the same metrics.
    """
    fb = ensure_feedback(feedback)
    config.validate()
    ctx, device = dist_utils.setup(config.device)
    try:
        return Trainer(chip_folders, out_dir, config, fb if ctx.is_main else NullFeedback(), ctx, device).run()
    finally:
        dist_utils.cleanup(ctx)
