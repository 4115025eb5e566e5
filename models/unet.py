"""U-Net with batch norm after every convolution.

U-Net: Ronneberger, O., Fischer, P., & Brox, T. (2015). U-Net: Convolutional Networks for Biomedical
Image Segmentation. MICCAI 2015, LNCS 9351, 234-241. https://doi.org/10.1007/978-3-319-24574-4_28

Configuration after Kamdem De Teyou, G., Tarabalka, Y., Manighetti, I., Almar, R., & Tripodi, S.
(2020). Deep Neural Networks for Automatic Extraction of Features in Time Series Optical Satellite
Images. Int. Arch. Photogramm. Remote Sens. Spatial Inf. Sci., XLIII-B2-2020, 1529-1535
(https://doi.org/10.5194/isprs-archives-XLIII-B2-2020-1529-2020): 32 filters in the first level (half
the original 64) and batch normalisation after each 3x3 convolution; ``depth`` poolings, filters
doubling per level. Sefrin, O., Riese, F. M., & Keller, S. (2021). Deep Learning for Land Cover Change
Detection. Remote Sensing, 13(1), 78 (https://doi.org/10.3390/rs13010078) uses the same FCN as the
pretrained base of the LSTM model (:class:`models.convlstm.UNetConvLSTM`).

Any input size works: pooling uses ``ceil_mode`` and each up-sampled map is cropped to its skip
connection, so inference tiles need not be multiples of ``2**depth``.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Sequential):
    """Two (3x3 conv -> BatchNorm -> ReLU) layers; spatial size unchanged."""

    def __init__(self, in_ch: int, out_ch: int, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class UNet(nn.Module):
    """U-Net for multispectral semantic segmentation.

    Args:
        in_channels: C input bands (any number; the first convolution takes them all).
        num_classes: K output channels.
        base_filters: filters of the first level (Kamdem De Teyou et al. 2020: 32); level i has ``base_filters * 2**i``.
        depth: number of 2x poolings (levels below the first), >= 1.
        dropout: Dropout2d rate after the bottleneck block (0 = none).

    Shapes:
        input ``(B, C, H, W)`` float32 (normalised), output logits ``(B, K, H, W)`` float32, any H, W >= 1.
    """

    def __init__(
        self, in_channels: int, num_classes: int, base_filters: int = 32, depth: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if depth < 1 or base_filters < 1:
            raise ValueError(f"depth ({depth}) and base_filters ({base_filters}) must be >= 1.")
        self.depth = depth
        widths = [base_filters * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList(
            [ConvBlock(in_channels, widths[0])]
            + [ConvBlock(widths[i - 1], widths[i], dropout if i == depth else 0.0) for i in range(1, depth + 1)]
        )
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.ups = nn.ModuleList(
            [nn.ConvTranspose2d(widths[i], widths[i - 1], 2, stride=2) for i in range(depth, 0, -1)]
        )
        self.decoders = nn.ModuleList([ConvBlock(widths[i - 1] * 2, widths[i - 1]) for i in range(depth, 0, -1)])
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last decoder feature map ``(B, base_filters, H, W)``."""
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.ups, self.decoders):
            skip = skips.pop()
            # ceil-mode pooling can make the up-sampled map one pixel larger: crop it to the skip.
            x = up(x)[..., : skip.shape[-2], : skip.shape[-1]]
            x = dec(torch.cat([skip, x], dim=1))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, H, W)`` of ``x`` ``(B, C, H, W)``."""
        return self.head(self.features(x))


def check_two_dates(in_channels: int) -> None:
    """Raise ValueError unless ``in_channels`` can be two dates stacked as channels (2C, even)."""
    if in_channels % 2:
        raise ValueError(f"unet_early_fusion takes two dates stacked as channels (2C); got {in_channels} channels.")


class UNetEarlyFusion(UNet):
    """U-Net over two dates stacked as channels (early fusion change detection).

    Two-date chips ``images/`` + ``images2/`` are stacked as ``(2C, H, W)`` (date 1 bands, then
    date 2 bands), as in the composite input of Esri's sample notebook "Multi-class change detection
    using image segmentation deep learning models" (ArcGIS API for Python).

    Args:
        in_channels: 2C, both dates together (must be even).
        num_classes: K output channels (e.g. "to" classes plus "no change").
        base_filters, depth, dropout: as :class:`UNet`.

    Shapes:
        input ``(B, 2C, H, W)`` float32, output logits ``(B, K, H, W)`` float32.
    """

    def __init__(
        self, in_channels: int, num_classes: int, base_filters: int = 32, depth: int = 4, dropout: float = 0.0
    ) -> None:
        check_two_dates(in_channels)
        super().__init__(in_channels, num_classes, base_filters, depth, dropout)
