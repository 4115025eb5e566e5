"""The pre-trained-encoder schedule: normalisation, loading, freeze/unfreeze, learning rates.

(Not to be confused with ``TrainConfig.finetune``, which starts a run from an earlier model of ours:
:func:`core.training.checkpoint.apply_finetune`.)

The recipe (ArcGIS Pro's Train Deep Learning Model ``freeze`` and fastai's ``fine_tune``, after Howard,
J., & Ruder, S. (2018). Universal Language Model Fine-tuning for Text Classification. ACL 2018,
328-339): the decoder trains alone for ``freeze_epochs`` epochs on a frozen encoder whose BatchNorm
statistics stay the pre-trained ones; then the whole network trains, the encoder at ``lr *
encoder_lr_factor``. With fewer than :data:`SMALL_BATCH` chips per step the encoder's BatchNorm
statistics stay fixed after unfreezing too, as batch statistics of so few chips are noisy.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ...models import resnet_backbone
from ..chips.manifest import Manifest
from ..feedback import Feedback
from .config import TrainConfig
from .pretrained import EncoderWeights, load_encoder_weights, resolve_encoder_weights, summary, weights_normalisation

#: Batch sizes below this keep the pre-trained BatchNorm statistics fixed for the whole run.
SMALL_BATCH = 8


def channel_names(manifest: Manifest, indices: list[str]) -> list[str]:
    """Names of the model's input channels: each date's bands then its indices (both dates of a pair)."""
    first = [*manifest.bands, *indices]
    return [*first, *(manifest.bands2 or manifest.bands), *indices] if manifest.kind == "pair" else first


class EncoderSchedule:
    """The pre-trained encoder of one training run (see the module docstring).

    Use :meth:`prepare` (before the datasets are built: it sets their normalisation), then :meth:`load`
    on the built model, :meth:`param_groups` for the optimiser and :meth:`at_epoch` before each epoch.
    """

    def __init__(self, weights: EncoderWeights, config: TrainConfig, channels: list[str], norm_note: str) -> None:
        self.weights, self.config, self.channels, self.norm_note = weights, config, channels, norm_note
        self.report: dict[str, Any] = {}
        self.frozen: bool | None = None  # None until the first epoch sets the encoder's state

    @classmethod
    def prepare(
        cls, config: TrainConfig, manifest: Manifest, indices: list[str], feedback: Feedback
    ) -> tuple[EncoderSchedule | None, Manifest]:
        """Resolve ``config.encoder_weights`` and give ``manifest`` the normalisation the weights expect.

        Returns:
            ``(None, manifest)`` without weights, else the schedule and the manifest with the
            weights' band mean/std for the bands they know (:func:`weights_normalisation`).

        Raises:
            InputError, ModelFileError: see :func:`core.training.pretrained.resolve_encoder_weights`.
        """
        backbone = resnet_backbone(config.architecture, config.backbone)
        weights = resolve_encoder_weights(config.encoder_weights, backbone, feedback)
        if weights is None:
            return None, manifest
        stats, note = _renormalised(weights, manifest.band_stats, manifest.bands)
        stats2, _ = _renormalised(weights, manifest.band_stats2, manifest.bands2 or manifest.bands)
        manifest = dataclasses.replace(manifest, band_stats=stats, band_stats2=stats2)
        feedback.info(f"Normalisation: {note}.")
        return cls(weights, config, channel_names(manifest, indices), note), manifest

    def load(self, model: torch.nn.Module, feedback: Feedback, resumed: bool = False) -> None:
        """Load the weights into ``model.encoder`` (not when resuming: the checkpoint has them) and freeze it."""
        if not resumed:
            self.report = load_encoder_weights(model, self.weights, self.channels, self.config.extra_band_init)
            feedback.info(summary(self.weights, self.report))

    def param_groups(self, model: torch.nn.Module, lr: float) -> list[dict[str, Any]]:
        """AdamW parameter groups: the encoder at ``lr * encoder_lr_factor``, the rest at ``lr``."""
        enc = {id(p) for p in model.encoder.parameters()}
        rest = [p for p in model.parameters() if id(p) not in enc]
        return [
            {"params": list(model.encoder.parameters()), "lr": lr * self.config.encoder_lr_factor},
            {"params": rest, "lr": lr},
        ]

    def at_epoch(self, model: torch.nn.Module, epoch: int, batch_size: int, feedback: Feedback) -> bool:
        """Freeze for epochs ``1..freeze_epochs``, unfreeze after; True when the state changed now."""
        frozen = epoch <= self.config.freeze_epochs
        changed = frozen != self.frozen  # always at the first epoch of a run, resumed runs included
        if changed:
            model.set_encoder_frozen(frozen, bn_frozen=batch_size < SMALL_BATCH)
            if not frozen and self.frozen:
                feedback.info(
                    f"Epoch {epoch}: the encoder is unfrozen (learning rate x{self.config.encoder_lr_factor})."
                )
            elif frozen:
                feedback.info(f"Epochs 1-{self.config.freeze_epochs}: the pre-trained encoder is frozen.")
        self.frozen = frozen
        return changed

    def info(self) -> dict[str, Any]:
        """What the model card's ``training["encoder_weights"]`` records."""
        return {
            **self.weights.info(),
            "normalisation": self.norm_note,
            "matched_bands": self.report.get("matched"),
            "initialised_bands": self.report.get("initialised"),
            "extra_band_init": self.config.extra_band_init,
            "freeze_epochs": self.config.freeze_epochs,
            "encoder_lr_factor": self.config.encoder_lr_factor,
        }


def _renormalised(weights: EncoderWeights, stats: list, bands: list[str]) -> tuple[list, str]:
    """``stats`` with the weights' mean/std for the bands they know, and the note of what was used."""
    if not stats:
        return stats, ""
    mean, std, note = weights_normalisation(weights, list(bands), [b.mean for b in stats], [b.std for b in stats])
    return [dataclasses.replace(b, mean=float(m), std=float(s)) for b, m, s in zip(stats, mean, std)], note
