"""Segmentation models in plain PyTorch and a registry from architecture name to builder.

Every model maps a normalised input to **logits** ``(B, K, H, W)`` float32 (softmax is appended at
ONNX export, see :mod:`core.export`). Inputs: ``(B, C, H, W)`` for ``unet``/``deeplabv3plus``,
``(B, 2C, H, W)`` (date 1 bands, then date 2 bands) for ``unet_early_fusion`` and
``(B, T, C, H, W)`` for ``unet_convlstm``; ``two_branch_unet`` (:mod:`models.fusion`, seed 001) takes
``(B, C, H, W)`` multi-sensor stacks and returns ``(main, aux)`` in training mode. Any H and W work (no multiple-of-32 requirement).

This package imports only torch, so it can be used without the rest of the plugin.
Registry pattern after torchgeo / segmentation_models_pytorch (see STYLE.md).
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from .convlstm import ConvLSTMCell, UNetConvLSTM
from .deeplab import DeepLabV3Plus, ResNetEncoder
from .fusion import AuxLoss, TwoBranchUNet, branches_from_sensors
from .unet import UNet, UNetEarlyFusion

#: Architecture name -> builder ``(in_channels, num_classes, **params) -> nn.Module``.
MODELS: dict[str, Callable[..., nn.Module]] = {
    "unet": UNet,
    "deeplabv3plus": DeepLabV3Plus,
    "unet_convlstm": UNetConvLSTM,
    "unet_early_fusion": UNetEarlyFusion,
    "two_branch_unet": TwoBranchUNet,
}

#: Architectures whose input is a time sequence ``(B, T, C, H, W)``.
SEQUENCE_MODELS = frozenset({"unet_convlstm"})

#: Architectures that return ``(main, aux)`` in training mode (train with :class:`~models.fusion.AuxLoss`).
AUX_MODELS = frozenset({"two_branch_unet"})


def build_model(name: str, in_channels: int, num_classes: int, **params: Any) -> nn.Module:
    """Build a model by registry name.

    Args:
        name: one of :data:`MODELS` (``"unet"``, ``"deeplabv3plus"``, ``"unet_convlstm"``,
            ``"unet_early_fusion"``).
        in_channels: input channels of one date (``unet_early_fusion``: both dates, 2C).
        num_classes: K output channels.
        **params: architecture arguments (``base_filters``, ``depth``, ``backbone``...).

    Returns:
        The model (in training mode, on CPU).

    Raises:
        ValueError: unknown name (the message lists the valid ones), or invalid arguments.
    """
    if name not in MODELS:
        raise ValueError(f"Unknown architecture {name!r}; valid names: {', '.join(sorted(MODELS))}.")
    if in_channels < 1 or num_classes < 1:
        raise ValueError(f"in_channels ({in_channels}) and num_classes ({num_classes}) must be >= 1.")
    try:
        return MODELS[name](in_channels, num_classes, **params)
    except TypeError as e:
        raise ValueError(f"Invalid parameters for architecture {name!r}: {e}") from e


__all__ = [
    "MODELS", "SEQUENCE_MODELS", "AUX_MODELS", "build_model", "TwoBranchUNet", "AuxLoss", "branches_from_sensors",
    "UNet", "UNetEarlyFusion", "DeepLabV3Plus", "ResNetEncoder",
    "UNetConvLSTM", "ConvLSTMCell",
]
