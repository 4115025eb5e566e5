"""The finish step of a training run: reload the best checkpoint, validate it, export ONNX and the report.

:func:`finish_run` is :meth:`core.training.trainer.Trainer.finish`; it takes the
:class:`~core.training.trainer.Trainer` (typed ``Any``: this module must not import it back; its model,
loaders, progress, configuration and output paths) and returns the :class:`TrainResult`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from . import distributed as dist_utils
from .checkpoint import load_checkpoint
from .config import TrainResult
from .data import base_datasets, loader_chip_folders
from .folders import model_dates
from .onnx_export import card_from_manifest, export_onnx
from .report import speed_summary, write_report
from .threshold import calibrate


def finish_run(trainer: Any) -> TrainResult:
    """Reload the best checkpoint, validate it, export ONNX with its card, write the report (rank 0 writes)."""
    ctx = trainer.ctx
    best = load_checkpoint(trainer.best_path) if ctx.is_main else None
    best = dist_utils.broadcast_object(ctx, best)  # out_dir need not be shared between nodes
    trainer.model.load_state_dict(best["state_dict"])  # the averaged weights when the run averaged them
    threshold = None
    if trainer.manifest.kind == "pair" and len(trainer.classes) == 2:  # a change model: tune P(change)
        trainer.model, threshold = calibrate(trainer.model, trainer.val_dl, trainer.device, ctx)
        if threshold is not None:
            trainer.fb.info(
                f"Change threshold chosen on the validation chips: P({trainer.classes[1].name}) >= "
                f"{threshold.probability:.3f} (change F1 {threshold.f1_argmax:.3f} with the plain argmax, "
                f"{threshold.f1:.3f} with it); built into the exported model."
            )
    metrics = trainer.validate(amp=False, model=trainer.model)
    warning = single_class_warning(metrics, trainer.config)
    if warning:
        trainer.fb.warning(warning)
    history, lr = trainer.progress.history, trainer.progress.lr
    training = {
        "chip_folders": [str(p) for p in loader_chip_folders(trainer.val_dl)],
        "best_epoch": best["best_epoch"],
        "epochs_run": len(history),
        "lr": lr,
        "config": asdict(trainer.config),
        "val_metrics": {k: metrics[k] for k in ("val_loss", "oa", "miou", "f1", "f1_per_class", "iou_per_class")},
        "val_chips": int(sum(len(d) for d in base_datasets(trainer.val_dl))),
        "val_pixels": int(np.sum(metrics["confusion_matrix"])),
        "world_size": ctx.world_size,
        "speed": speed_summary(history, trainer.thread_policy.busy_seconds),
    }
    if trainer.finetune:
        training["encoder_weights"] = trainer.finetune.info()
    if threshold is not None:
        training["decision_threshold"] = threshold.to_dict()
    parity = export_model(trainer, training, metrics) if ctx.is_main else None
    parity = dist_utils.broadcast_object(ctx, parity)  # also the barrier: rank 0's files are complete
    files = (trainer.out / "model.onnx", trainer.best_path, trainer.out / "report.html", trainer.log_path)
    return TrainResult(trainer.out, *files, metrics, int(best["best_epoch"]), len(history), lr, parity, history)


def single_class_warning(metrics: dict[str, Any], config: Any) -> str | None:
    """A warning when the model predicts one class only on validation chips that hold several, else None.

    Imbalanced chips (one dominant class) can make a network predict that class everywhere; class weights
    usually cure it (measured on the Slovenia time series: BENCHMARKS.md, "Train Model's default recipe").
    """
    cm = np.asarray(metrics["confusion_matrix"])
    predicted, present = np.flatnonzero(cm.sum(axis=0)), np.count_nonzero(cm.sum(axis=1))
    if len(predicted) != 1 or present < 2:
        return None
    name = metrics["class_names"][int(predicted[0])]
    advice = (
        "train again with class weights (CLASS_WEIGHTS median, --class-weights median)"
        if config.class_weights == "none"
        else "train again with more epochs, more chips or another learning rate"
    )
    return (
        f"The model predicts only '{name}' on the validation chips, which hold "
        f"{present} classes: it learned the dominant class only; {advice}."
    )


def export_model(trainer: Any, training: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """``model.onnx`` with its card (``training`` recorded in it) and ``report.html``; the parity check."""
    cfg, fb, m = trainer.config, trainer.fb, trainer.manifest
    card = card_from_manifest(
        m, cfg.architecture, trainer.params, training, indices=trainer.indices, dates=model_dates(m, cfg)
    )
    trainer.model.to(memory_format=torch.contiguous_format)  # the ONNX initialisers in plain NCHW order
    sample = next(iter(trainer.val_dl))[0][:2]
    fb.set_progress(93)
    parity = export_onnx(trainer.model, card, trainer.out / "model.onnx", sample)
    fb.info(
        f"ONNX export: parity with PyTorch {'passed' if parity.passed else 'FAILED'} "
        f"(max |diff| {parity.max_abs_diff:.2e}, rtol {parity.rtol}, atol {parity.atol})."
    )
    if not parity.passed:
        fb.warning("ONNX Runtime and PyTorch outputs differ beyond tolerance; check the report before using the model.")
    write_report(trainer.out, trainer.progress.history, metrics, card, parity.to_dict())
    fb.set_progress(100)
    return parity.to_dict()
