"""ResNet-18/34/50 encoders in plain torch, with torchvision/timm parameter names.

ResNet: He, K., Zhang, X., Ren, S., & Sun, J. (2016). Deep Residual Learning for Image Recognition.
CVPR 2016, 770-778. https://doi.org/10.1109/CVPR.2016.90

The parameter names are torchvision's and timm's (``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight``,
``layer2.0.downsample.0.weight`` ...), so their ImageNet state dicts and the Sentinel-2 ResNets that
torchgeo publishes in the same layout (SSL4EO-S12, SatlasPretrain) load with ``load_state_dict`` as
they are (``fc.*`` is not part of an encoder and is ignored, see :func:`encoder_state_dict`). No
torchvision: it does not import beside the PyPI torch wheel on every platform we support.

:class:`EncoderFreezing` is the mixin of the models built on this encoder (:class:`models.unet_resnet.ResNetUNet`,
:class:`models.deeplab.DeepLabV3Plus`): freeze the encoder, and keep its BatchNorm statistics fixed
while it is frozen (ArcGIS "freeze"; fastai's ``freeze()``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """ResNet-18/34 residual block (two 3x3 convolutions)."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, planes, 3, stride, dilation, dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _shortcut(in_ch, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x), inplace=True)


class Bottleneck(nn.Module):
    """ResNet-50 bottleneck block (1x1, 3x3, 1x1; expansion 4; stride on the 3x3 as torchvision's v1.5)."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = _shortcut(in_ch, planes * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = F.relu(self.bn2(self.conv2(y)), inplace=True)
        y = self.bn3(self.conv3(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x), inplace=True)


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


#: backbone name -> (block, blocks per stage); the names are :data:`models.BACKBONES` (a test keeps them equal).
RESNETS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}

#: Old parameter-name prefixes of our DeepLabv3+ encoder (before the torchvision names) -> the new ones.
_LEGACY = (("stem.0.0.", "conv1."), ("stem.0.1.", "bn1."), (".down.", ".downsample."))


class ResNetEncoder(nn.Module):
    """ResNet-18/34/50 feature extractor for any number of input bands.

    Args:
        in_channels: C input bands (the 7x7 stride-2 stem convolution ``conv1`` takes them all).
        backbone: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        output_stride: 32 (every stage strided, as torchvision) or 16 (``layer4`` dilated instead,
            for DeepLabv3+).

    Shapes:
        :meth:`features` of ``x (B, C, H, W)`` float32: five maps at strides 2, 4, 8, 16, 32 (16 for
        ``layer4`` at output stride 16) with :attr:`channels` channels; a stride-s map is
        ``ceil(H/s) x ceil(W/s)``.

    Raises:
        ValueError: unknown backbone or output stride.
    """

    def __init__(self, in_channels: int, backbone: str = "resnet18", output_stride: int = 32) -> None:
        super().__init__()
        if backbone not in RESNETS:
            raise ValueError(f"Unknown backbone {backbone!r}; valid: {', '.join(RESNETS)}.")
        if output_stride not in (16, 32):
            raise ValueError(f"output_stride must be 16 or 32, not {output_stride}.")
        block, counts = RESNETS[backbone]
        self.backbone = backbone
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self._in = 64
        self.layer1 = self._stage(block, 64, counts[0], 1, 1)
        self.layer2 = self._stage(block, 128, counts[1], 2, 1)
        self.layer3 = self._stage(block, 256, counts[2], 2, 1)
        self.layer4 = self._stage(
            block, 512, counts[3], 2 if output_stride == 32 else 1, 1 if output_stride == 32 else 2
        )
        #: channels of the five feature maps of :meth:`features`
        self.channels = (64, 64 * block.expansion, 128 * block.expansion, 256 * block.expansion, 512 * block.expansion)
        self.low_channels, self.out_channels = self.channels[1], self.channels[4]
        self._register_load_state_dict_pre_hook(_rename_legacy)

    def _stage(self, block: type, planes: int, n: int, stride: int, dilation: int) -> nn.Sequential:
        layers = [block(self._in, planes, stride, 1 if stride > 1 else dilation)]
        self._in = planes * block.expansion
        layers += [block(self._in, planes, 1, dilation) for _ in range(n - 1)]
        return nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five feature maps (see the class docstring), shallowest first."""
        f0 = F.relu(self.bn1(self.conv1(x)), inplace=True)
        f1 = self.layer1(self.maxpool(f0))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        return [f0, f1, f2, f3, self.layer4(f3)]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(low, high)``: the stride-4 ``layer1`` and the deepest ``layer4`` features (DeepLabv3+)."""
        f = self.features(x)
        return f[1], f[4]


def _rename_legacy(state_dict, prefix, *_args) -> None:
    """Load-state-dict pre-hook: rename our pre-torchvision-names DeepLabv3+ keys (old checkpoints)."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        new = key
        for old, repl in _LEGACY:
            new = new.replace(old, repl)
        if new != key:
            state_dict[new] = state_dict.pop(key)


def encoder_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder part of a torchvision/timm ResNet state dict: ``fc.*`` dropped, common prefixes removed.

    Accepts plain state dicts and the usual wrappers: ``{"state_dict": ...}``, ``{"model": ...}``, keys
    prefixed ``module.``, ``encoder.``, ``backbone.`` or ``model.``.
    """
    for wrapper in ("state_dict", "model"):
        if isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    out = {}
    for key, value in state.items():
        k = key
        for pre in ("module.", "model.", "backbone.", "encoder."):
            if k.startswith(pre):
                k = k[len(pre) :]
        if not k.startswith("fc.") and isinstance(value, torch.Tensor):
            out[k] = value
    return out


class EncoderFreezing:
    """Mixin for a model with a :class:`ResNetEncoder` at ``self.encoder``: freeze and unfreeze it.

    While frozen, the encoder's parameters get no gradient and its BatchNorm layers stay in eval mode
    (their running statistics are the pre-trained ones), whatever ``model.train()`` says. With
    ``bn_frozen`` the BatchNorm statistics stay fixed after unfreezing too (small batches, where batch
    statistics are noisy).
    """

    encoder: ResNetEncoder
    _encoder_frozen: bool = False
    _encoder_bn_frozen: bool = False

    def set_encoder_frozen(self, frozen: bool, bn_frozen: bool = False) -> None:
        """Freeze (``True``) or unfreeze the encoder; ``bn_frozen``: keep its BatchNorm statistics fixed."""
        self._encoder_frozen, self._encoder_bn_frozen = bool(frozen), bool(bn_frozen)
        for p in self.encoder.parameters():
            p.requires_grad_(not frozen)
        self.train(self.training)  # type: ignore[attr-defined]

    def train(self, mode: bool = True):  # noqa: D102
        super().train(mode)  # type: ignore[misc]
        if mode and (self._encoder_frozen or self._encoder_bn_frozen):
            for m in self.encoder.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self
