"""Checkpoints of a training run: the format, atomic saving, loading, resume and fine-tune.

``model.pt`` holds the best epoch and ``last.pt`` the last finished one. Both are a dict loadable
with ``torch.load(path, weights_only=True)`` (tensors and primitive types only)::

    format "deeplandcover-checkpoint", version 1, architecture str, in_channels int,
    num_classes int, arch_params dict, state_dict {name: tensor}, optimizer dict, scheduler dict,
    epoch int (finished epochs), best_epoch int, best_score float, bad_epochs int, lr float,
    batch_size int, history [ {epoch, train_loss, val_loss, oa, miou, f1, lr, batch_size, seconds,
    f1_<class>} ], config dict (TrainConfig fields), card dict (ModelCard fields), torch_rng uint8 tensor.

Files are written through :func:`core.raster.io.atomic_output`, so a crash never leaves a half-written
checkpoint under the final name.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, ModelFileError
from ..feedback import Feedback
from ..modelcard import ModelCard
from ..raster.io import atomic_output
from .averaging import trained_weights
from .config import TrainConfig
from .steps import Optimisation

#: ``format`` of every checkpoint this module writes.
CKPT_FORMAT = "deeplandcover-checkpoint"
#: ``version`` of the layout above.
CKPT_VERSION = 1


@dataclass
class Progress:
    """The state of the epoch loop that a checkpoint carries, and that resume continues from.

    Attributes:
        lr: the learning rate (None until the LR range test chose one).
        batch_size: chips per step (halved after a CUDA out-of-memory error).
        epoch: finished epochs.
        best_epoch: the 1-based epoch saved as ``model.pt`` (0 = none yet).
        best_score: the monitored value of the best epoch, as "higher is better" (-inf = none yet).
        bad_epochs: epochs since the last improvement (early stopping counts them).
        history: one row per finished epoch (the rows of ``training_log.csv``).
    """

    lr: float | None
    batch_size: int
    epoch: int = 0
    best_epoch: int = 0
    best_score: float = -math.inf
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_checkpoint(cls, ck: dict[str, Any]) -> Progress:
        """The progress stored in checkpoint ``ck``."""
        return cls(
            lr=float(ck["lr"]),
            batch_size=int(ck["batch_size"]),
            epoch=int(ck["epoch"]),
            best_epoch=int(ck["best_epoch"]),
            best_score=float(ck["best_score"]),
            bad_epochs=int(ck["bad_epochs"]),
            history=list(ck["history"]),
        )

    def record(self, epoch: int, score: float, min_delta: float) -> bool:
        """Count epoch ``epoch`` with monitored ``score`` ("higher is better"): True when it is the new best,
        i.e. the first epoch or better than the best by more than ``min_delta``."""
        improved = score > self.best_score + min_delta or self.best_epoch == 0
        if improved:
            self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
        else:
            self.bad_epochs += 1
        return improved


@dataclass(frozen=True)
class NetworkSpec:
    """What rebuilds a run's network: ``models.build_model(architecture, in_channels, num_classes, **arch_params)``.

    Attributes:
        architecture: a registry name (:data:`models.ARCHITECTURES`).
        in_channels: input channels C of one time step (both dates of a pair: ``2 * bands``).
        num_classes: output channels K.
        arch_params: the constructor's other arguments (JSON-serialisable).
    """

    architecture: str
    in_channels: int
    num_classes: int
    arch_params: dict[str, Any] = field(default_factory=dict)


def make_checkpoint(
    model: torch.nn.Module,
    spec: NetworkSpec,
    optim: Optimisation,
    progress: Progress,
    config: TrainConfig,
    card: ModelCard,
) -> dict[str, Any]:
    """The checkpoint dict (see the module docstring) of the run's current state."""
    return {
        "format": CKPT_FORMAT,
        "version": CKPT_VERSION,
        "architecture": spec.architecture,
        "in_channels": spec.in_channels,
        "num_classes": spec.num_classes,
        "arch_params": spec.arch_params,
        "state_dict": model.state_dict(),
        "optimizer": optim.optimizer.state_dict(),
        "scheduler": optim.scheduler.state_dict(),
        "epoch": progress.epoch,
        "best_epoch": progress.best_epoch,
        "best_score": progress.best_score,
        "bad_epochs": progress.bad_epochs,
        "lr": progress.lr,
        "batch_size": progress.batch_size,
        "history": progress.history,
        "config": asdict(config),
        "card": asdict(card),
        "torch_rng": torch.get_rng_state(),
    }


def save_checkpoint(path: str | os.PathLike, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` to ``path`` atomically (a temporary file renamed into place)."""
    with atomic_output(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint (``.pt``; for ``.onnx`` the ``model.pt`` beside it).

    Raises:
        ModelFileError: the file (or the ``.pt`` beside an ``.onnx``) is missing, unreadable or not a
            Deep Land Cover checkpoint.
    """
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        p = p.with_suffix(".pt")
        if not p.is_file():
            raise ModelFileError(
                f"Fine-tuning needs the PyTorch checkpoint {p.name} that Train Model writes beside "
                f"{Path(path).name}; it was not found in {p.parent}."
            )
    if not p.is_file():
        raise ModelFileError(f"Checkpoint {p} does not exist.")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelFileError(f"{p.name} is not a readable Deep Land Cover checkpoint ({type(e).__name__}: {e}).") from e
    if not isinstance(ck, dict) or ck.get("format") != CKPT_FORMAT:
        raise ModelFileError(f"{p.name} is not a Deep Land Cover checkpoint (model.pt written by Train Model).")
    return ck


def check_resume(ck: dict[str, Any], spec: NetworkSpec) -> None:
    """Raise :class:`InputError` unless checkpoint ``ck`` is a model of ``spec``'s architecture, channels and classes."""
    if (ck["architecture"], ck["num_classes"], ck["in_channels"]) != (
        spec.architecture,
        spec.num_classes,
        spec.in_channels,
    ):
        raise InputError(
            f"The resume checkpoint is a {ck['architecture']} with {ck['in_channels']} channels and "
            f"{ck['num_classes']} classes; it does not fit these chips / this architecture."
        )


def restore_weights(
    model: torch.nn.Module, config: TrainConfig, spec: NetworkSpec, feedback: Feedback
) -> dict[str, Any] | None:
    """Load ``config.resume``'s weights into ``model`` and return that checkpoint, or initialise ``model`` from
    ``config.finetune``'s model (:func:`apply_finetune`) and return None; None too for a new run.

    Raises:
        ModelFileError: an unreadable checkpoint. InputError: it does not fit ``spec``.
    """
    if config.resume:
        ck = load_checkpoint(config.resume)
        check_resume(ck, spec)
        model.load_state_dict(trained_weights(ck))
        return ck
    if config.finetune:
        apply_finetune(model, load_checkpoint(config.finetune), config.architecture, feedback)
    return None


def apply_finetune(model: torch.nn.Module, ck: dict[str, Any], architecture: str, fb: Feedback) -> None:
    """Initialise ``model`` with the weights of checkpoint ``ck`` whose names and shapes fit.

    Tensors whose shapes differ (other bands or classes) keep their fresh initialisation, with a warning.

    Raises:
        InputError: ``ck`` is another architecture, or not a single tensor fits.
    """
    if ck["architecture"] != architecture:
        raise InputError(
            f"The fine-tuning model is a {ck['architecture']}; choose that architecture (not {architecture})."
        )
    own = model.state_dict()
    keep = {k: v for k, v in ck["state_dict"].items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(keep))
    if len(keep) == 0:
        raise InputError("No layer of the fine-tuning model fits this model (different bands or sizes).")
    model.load_state_dict(keep, strict=False)
    if skipped:
        fb.warning(
            f"Fine-tuning: {len(skipped)} tensors re-initialised because their shapes differ "
            f"(bands or classes changed): {', '.join(skipped[:6])}{'...' if len(skipped) > 6 else ''}"
        )
    fb.info(f"Fine-tuning from a {ck['architecture']} ({len(keep)} tensors loaded).")
