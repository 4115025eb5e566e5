"""The finish step of a training run, in pieces with explicit arguments (:meth:`core.training.trainer.Trainer.finish`
puts them together): a change model's decision threshold, the one-class warning, the card's training record,
the checked ONNX export.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..feedback import Feedback
from ..modelcard import ModelCard
from .checkpoint import Progress
from .config import TrainConfig
from .data import base_datasets, loader_chip_folders
from .distributed import DistContext
from .folders import TrainingSet
from .onnx_export import ParityResult, export_onnx
from .report import speed_summary
from .steps import StepSetup
from .threads import ThreadPolicy
from .threshold import Threshold, calibrate


def change_threshold(
    model: torch.nn.Module, loader: DataLoader, setup: StepSetup, data: TrainingSet, feedback: Feedback
) -> tuple[torch.nn.Module, Threshold | None]:
    """A two-class change model (pair chips) with its P(change) threshold tuned on the validation chips
    (:func:`core.training.threshold.calibrate`), and the threshold; other models as they are, and None."""
    if data.manifest.kind != "pair" or len(data.classes) != 2:
        return model, None
    model, threshold = calibrate(model, loader, setup.device, setup.ctx)
    if threshold is not None:
        feedback.info(
            f"Change threshold chosen on the validation chips: P({data.classes[1].name}) >= "
            f"{threshold.probability:.3f} (change F1 {threshold.f1_argmax:.3f} with the plain argmax, "
            f"{threshold.f1:.3f} with it); built into the exported model."
        )
    return model, threshold


def single_class_warning(metrics: dict[str, Any], config: TrainConfig) -> str | None:
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


def training_record(
    config: TrainConfig,
    progress: Progress,
    metrics: dict[str, Any],
    val_dl: DataLoader,
    ctx: DistContext,
    threads: ThreadPolicy,
) -> dict[str, Any]:
    """The model card's ``training`` record of a finished run: chips, epochs, learning rate, configuration,
    the best model's validation metrics (``metrics``: :func:`core.training.steps.validation_metrics`), the
    process count and the speed (:func:`core.training.report.speed_summary`)."""
    history = progress.history
    return {
        "chip_folders": [str(p) for p in loader_chip_folders(val_dl)],
        "best_epoch": progress.best_epoch,
        "epochs_run": len(history),
        "lr": progress.lr,
        "config": asdict(config),
        "val_metrics": {k: metrics[k] for k in ("val_loss", "oa", "miou", "f1", "f1_per_class", "iou_per_class")},
        "val_chips": int(sum(len(d) for d in base_datasets(val_dl))),
        "val_pixels": int(np.sum(metrics["confusion_matrix"])),
        "world_size": ctx.world_size,
        "speed": speed_summary(history, threads.busy_seconds),
    }


def export_checked(
    model: torch.nn.Module, card: ModelCard, path: Path, sample: torch.Tensor, feedback: Feedback
) -> ParityResult:
    """``path`` (``model.onnx``) with ``card`` in its metadata, and its parity with PyTorch on ``sample``
    (``(B, C, H, W)`` or ``(B, T, C, H, W)`` float32), logged; a failed parity check is a warning."""
    model.to(memory_format=torch.contiguous_format)  # the ONNX initialisers in plain NCHW order
    feedback.set_progress(93)
    parity = export_onnx(model, card, path, sample)
    feedback.info(
        f"ONNX export: parity with PyTorch {'passed' if parity.passed else 'FAILED'} "
        f"(max |diff| {parity.max_abs_diff:.2e}, rtol {parity.rtol}, atol {parity.atol})."
    )
    if not parity.passed:
        feedback.warning(
            "ONNX Runtime and PyTorch outputs differ beyond tolerance; check the report before using the model."
        )
    return parity
