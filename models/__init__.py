"""Segmentation models in plain PyTorch and the registry from architecture name to builder.

Every model maps a normalised input to **logits** ``(B, K, H, W)`` float32 (softmax is appended at
ONNX export, see :mod:`core.training.onnx_export`). Inputs: ``(B, C, H, W)`` for
``unet``/``deeplabv3plus``, ``(B, 2C, H, W)`` (date 1 bands, then date 2 bands) for
``unet_early_fusion``, ``fc_siam_diff`` and ``fc_siam_conc`` (:mod:`models.siamese`) and
``(B, T, C, H, W)`` for ``unet_convlstm`` and ``presto`` (:mod:`models.presto`, per pixel); ``dynamicworld``
(:class:`models.dynamicworld.DynamicWorldClassifier`) takes Dynamic World's 9 Sentinel-2 bands; ``two_branch_unet``
(:mod:`models.fusion`) takes ``(B, C, H, W)`` multi-sensor stacks and returns ``(main, aux)`` in
training mode. Any H and W work (no multiple-of-32 requirement).

The registry is the one place that names the architectures: the Train Model dialog, the CLI and
:class:`core.training.config.TrainConfig` take their choices from :data:`ARCHITECTURES`. Importing this
package needs no torch (QGIS lists the choices while loading the provider); :func:`model_class` and
:func:`build_model` import a builder's module on first use. This package imports only torch, so it can
be used without the rest of the plugin. The pattern follows torchgeo's ``models/api.py`` (a dict behind
``get_model``) and segmentation_models_pytorch's ``create_model`` (an unknown name lists the valid ones).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

#: Architecture name -> ``"module:Class"`` of its builder ``(in_channels, num_classes, **params) -> nn.Module``
#: in this package, in the order the Train Model dialog lists them.
MODELS: dict[str, str] = {
    "unet": "unet:UNet",
    "deeplabv3plus": "deeplab:DeepLabV3Plus",
    "unet_convlstm": "convlstm:UNetConvLSTM",
    "unet_early_fusion": "unet:UNetEarlyFusion",
    "two_branch_unet": "fusion:TwoBranchUNet",
    "fc_siam_diff": "siamese:SiamDiffUNet",
    "fc_siam_conc": "siamese:SiamConcUNet",
    "presto": "presto:PrestoClassifier",
    "dynamicworld": "dynamicworld:DynamicWorldClassifier",
}

#: Networks of published pre-trained models with their authors' heads, built by name like :data:`MODELS`
#: (``build_model("dynamicworld_pretrained", 9, 9)``) but not Train Model choices: the complete
#: :class:`models.dynamicworld.DynamicWorld` (Brown et al. 2022), which loads the authors' checkpoint
#: (:func:`models.dynamicworld.load_checkpoint`). Train Model's ``dynamicworld`` is its body under a new head.
PRETRAINED_MODELS: dict[str, str] = {"dynamicworld_pretrained": "dynamicworld:DynamicWorld"}

#: The architecture names (the keys of :data:`MODELS`), the first one the default.
ARCHITECTURES: tuple[str, ...] = tuple(MODELS)

#: Architectures whose input is a time sequence ``(B, T, C, H, W)``.
SEQUENCE_MODELS = frozenset({"unet_convlstm", "presto"})

#: Change architectures: input two dates stacked as channels ``(B, 2C, H, W)``, trained on two-date (pair) chips:
#: early fusion (FC-EF) and the Siamese FC-Siam-diff / FC-Siam-conc (Caye Daudt et al., ICIP 2018).
PAIR_MODELS = frozenset({"unet_early_fusion", "fc_siam_diff", "fc_siam_conc"})

#: Architectures that return ``(main, aux)`` in training mode (train with :class:`~models.fusion.AuxLoss`).
AUX_MODELS = frozenset({"two_branch_unet"})

#: Encoder choices: ``default`` (U-Net's own plain encoder; ResNet-18 for DeepLabv3+), then the ResNets
#: (the keys of :data:`models.resnet.RESNETS`).
BACKBONES: tuple[str, ...] = ("default", "resnet18", "resnet34", "resnet50")

#: Architectures whose encoder a ResNet ``backbone`` replaces -> the ``"module:Class"`` built then
#: (:class:`models.unet_resnet.ResNetUNet`); DeepLabv3+ always has a ResNet encoder.
RESNET_VARIANTS: dict[str, str] = {"unet": "unet_resnet:ResNetUNet", "unet_early_fusion": "unet_resnet:ResNetUNet"}

#: Architectures that take pre-trained ResNet encoder weights (with a ResNet backbone).
PRETRAINABLE = frozenset({"deeplabv3plus", *RESNET_VARIANTS})


def resnet_backbone(name: str, backbone: str | None) -> str | None:
    """The ResNet encoder that architecture ``name`` gets for ``backbone`` (None: no ResNet encoder)."""
    if name == "deeplabv3plus":
        return "resnet18" if backbone in (None, "default") else backbone
    if name in RESNET_VARIANTS and backbone not in (None, "default"):
        return backbone
    return None


def model_class(name: str) -> type[nn.Module]:
    """The builder class of architecture ``name`` (a key of :data:`MODELS` or :data:`PRETRAINED_MODELS`; imports torch).

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    if name not in MODELS and name not in PRETRAINED_MODELS:
        raise ValueError(f"Unknown architecture {name!r}; valid names: {', '.join(sorted(MODELS))}.")
    module, cls = (MODELS.get(name) or PRETRAINED_MODELS[name]).split(":")
    return getattr(import_module(f".{module}", __name__), cls)


def build_model(name: str, in_channels: int, num_classes: int, **params: Any) -> nn.Module:
    """Build a model by registry name.

    Args:
        name: a key of :data:`MODELS` (see :data:`ARCHITECTURES`).
        in_channels: input channels of one date (``unet_early_fusion``: both dates, 2C).
        num_classes: K output channels.
        **params: architecture arguments (``base_filters``, ``depth``, ``backbone``...). A ResNet
            ``backbone`` for ``unet``/``unet_early_fusion`` builds :class:`models.unet_resnet.ResNetUNet`
            (its own arguments then: ``decoder_channels``, ``dropout``).

    Returns:
        The model (in training mode, on CPU).

    Raises:
        ValueError: unknown name (the message lists the valid ones), or invalid arguments.
    """
    builder = model_class(name)
    backbone = params.pop("backbone", None)
    if name in RESNET_VARIANTS and backbone not in (None, "default"):
        if name == "unet_early_fusion":
            import_module(".unet", __name__).check_two_dates(in_channels)
        module, cls = RESNET_VARIANTS[name].split(":")
        builder, params = getattr(import_module(f".{module}", __name__), cls), {**params, "backbone": backbone}
    elif name == "deeplabv3plus":
        params["backbone"] = resnet_backbone(name, backbone)
    elif backbone not in (None, "default"):
        raise ValueError(f"Architecture {name!r} has no ResNet backbone option; use backbone 'default'.")
    if in_channels < 1 or num_classes < 1:
        raise ValueError(f"in_channels ({in_channels}) and num_classes ({num_classes}) must be >= 1.")
    try:
        return builder(in_channels, num_classes, **params)
    except TypeError as e:
        raise ValueError(f"Invalid parameters for architecture {name!r}: {e}") from e


__all__ = [
    "ARCHITECTURES",
    "AUX_MODELS",
    "BACKBONES",
    "MODELS",
    "PAIR_MODELS",
    "PRETRAINABLE",
    "PRETRAINED_MODELS",
    "RESNET_VARIANTS",
    "SEQUENCE_MODELS",
    "build_model",
    "model_class",
    "resnet_backbone",
]
