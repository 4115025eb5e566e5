"""DeepLabv3+ on a ResNet encoder, plain torch.

DeepLabv3+: Chen, L.-C., Zhu, Y., Papandreou, G., Schroff, F., & Adam, H. (2018). Encoder-Decoder with
Atrous Separable Convolution for Semantic Image Segmentation. ECCV 2018.
https://doi.org/10.1007/978-3-030-01234-2_49 . ResNet: He, K., Zhang, X., Ren, S., & Sun, J. (2016).
Deep Residual Learning for Image Recognition. CVPR 2016.

After Cherif, E., Hell, M., & Brandmeier, M. (2022). DeepForest: Novel Deep Learning Models for Land Use
and Land Cover Classification Using Multi-Temporal and -Modal Sentinel Data of the Amazon Basin. Remote
Sensing, 14(19), 5000 (https://doi.org/10.3390/rs14195000; ResNet encoder + ASPP, their DeepLab
baseline) and Yi, Z.-F., Bollinger, D., & Peressutti, D. (2020), "Mapping land use and land cover
changes faster and at scale with deep learning on the cloud", Development Seed / Sinergise (swappable
encoders: ResNet-18/34/50 here). The encoder runs at
output stride 16 (the last stage dilated instead of strided); the decoder fuses the ASPP output
with the stride-4 features and up-samples bilinearly to the input size, so any H, W works.
The encoder is :class:`models.resnet.ResNetEncoder` (torchvision parameter names), so pre-trained
ResNet weights load into it (:mod:`core.training.pretrained`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .resnet import RESNETS, EncoderFreezing, ResNetEncoder

__all__ = ["ASPP", "RESNETS", "DeepLabV3Plus"]


def _bn_relu_conv(in_ch: int, out_ch: int, k: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, k, stride, pad, dilation, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)
    )


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling (Chen et al., 2017): 1x1 + three dilated 3x3 + image pooling.

    The image-pooling branch has no batch norm (a 1x1 map with batch size 1 cannot be normalised).
    """

    def __init__(self, in_ch: int, out_ch: int = 256, rates: tuple[int, ...] = (6, 12, 18)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [_bn_relu_conv(in_ch, out_ch, 1)] + [_bn_relu_conv(in_ch, out_ch, 3, dilation=r) for r in rates]
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, out_ch, 1), nn.ReLU(inplace=True))
        self.project = nn.Sequential(_bn_relu_conv(out_ch * (len(rates) + 2), out_ch, 1), nn.Dropout(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        feats = [b(x) for b in self.branches]
        feats.append(self.pool(x).expand(-1, -1, x.shape[-2], x.shape[-1]))
        return self.project(torch.cat(feats, dim=1))


class DeepLabV3Plus(EncoderFreezing, nn.Module):
    """DeepLabv3+: ResNet encoder, ASPP, decoder with stride-4 skip features.

    Args:
        in_channels: C input bands.
        num_classes: K output channels.
        backbone: ``"resnet18"`` (default), ``"resnet34"`` or ``"resnet50"``.
        aspp_channels: channels of the ASPP and decoder (256 in the paper).

    Shapes:
        input ``(B, C, H, W)`` float32, output logits ``(B, K, H, W)`` float32, any H, W >= 1.
    """

    def __init__(
        self, in_channels: int, num_classes: int, backbone: str = "resnet18", aspp_channels: int = 256
    ) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(in_channels, backbone, output_stride=16)
        self.aspp = ASPP(self.encoder.out_channels, aspp_channels)
        self.low_proj = _bn_relu_conv(self.encoder.low_channels, 48, 1)
        self.decoder = nn.Sequential(
            _bn_relu_conv(aspp_channels + 48, aspp_channels, 3), _bn_relu_conv(aspp_channels, aspp_channels, 3)
        )
        self.head = nn.Conv2d(aspp_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, H, W)`` of ``x`` ``(B, C, H, W)``."""
        low, high = self.encoder(x)
        high = F.interpolate(self.aspp(high), size=low.shape[-2:], mode="bilinear", align_corners=False)
        y = self.head(self.decoder(torch.cat([high, self.low_proj(low)], dim=1)))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
