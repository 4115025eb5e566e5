"""U-Net with a ResNet-18/34/50 encoder (the ``unet`` architecture with a ``backbone``).

U-Net: Ronneberger, O., Fischer, P., & Brox, T. (2015). U-Net: Convolutional Networks for Biomedical
Image Segmentation. MICCAI 2015, LNCS 9351, 234-241. https://doi.org/10.1007/978-3-319-24574-4_28 .
The ResNet encoder with a U-Net decoder is the design of ArcGIS's "UnetClassifier" (ResNet-34 by
default) and of segmentation_models_pytorch's ``Unet``: Iakubovskii, P. (2019), Segmentation Models
Pytorch, https://github.com/qubvel/segmentation_models.pytorch . ResNet: He et al. (2016), CVPR.

The encoder (:class:`models.resnet.ResNetEncoder`) has torchvision/timm parameter names under
``encoder.``, so pre-trained ImageNet or Sentinel-2 ResNets load into it. The decoder up-samples the
deepest features to each skip's size (bilinear), concatenates the skip and applies two 3x3 conv-BN-ReLU;
the last block works at full resolution without a skip. Any H, W >= 1 work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .resnet import EncoderFreezing, ResNetEncoder
from .unet import ConvBlock


class ResNetUNet(EncoderFreezing, nn.Module):
    """U-Net on a ResNet encoder.

    Args:
        in_channels: C input bands (2C for two dates stacked as channels).
        num_classes: K output channels.
        backbone: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        decoder_channels: channels of the five decoder blocks, deepest first (strides 16, 8, 4, 2, 1).
        dropout: Dropout2d rate on the deepest encoder features (0 = none).

    Shapes:
        input ``(B, C, H, W)`` float32 (normalised), output logits ``(B, K, H, W)`` float32.

    Raises:
        ValueError: unknown backbone, or not five decoder channel counts.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        backbone: str = "resnet34",
        decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(decoder_channels) != 5:
            raise ValueError(f"decoder_channels needs 5 values (strides 16, 8, 4, 2, 1), got {decoder_channels}.")
        self.encoder = ResNetEncoder(in_channels, backbone, output_stride=32)
        enc = self.encoder.channels  # strides 2, 4, 8, 16, 32
        skips = (enc[3], enc[2], enc[1], enc[0], 0)
        ins = (enc[4], *decoder_channels[:-1])
        self.decoders = nn.ModuleList([ConvBlock(i + s, o) for i, s, o in zip(ins, skips, decoder_channels)])
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Conv2d(decoder_channels[-1], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, H, W)`` of ``x`` ``(B, C, H, W)``."""
        feats = self.encoder.features(x)
        y = self.dropout(feats[4])
        targets = [*feats[3::-1], x]  # the skips at strides 16, 8, 4, 2, then the input size
        for i, (dec, target) in enumerate(zip(self.decoders, targets)):
            y = F.interpolate(y, size=target.shape[-2:], mode="bilinear", align_corners=False)
            y = dec(y if i == 4 else torch.cat([y, target], dim=1))
        return self.head(y)
