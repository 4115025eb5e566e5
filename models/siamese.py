"""Fully convolutional Siamese change-detection networks: FC-Siam-diff and FC-Siam-conc.

Caye Daudt, R., Le Saux, B., & Boulch, A. (2018). Fully Convolutional Siamese Networks for Change
Detection. 2018 25th IEEE International Conference on Image Processing (ICIP), 4063-4067.
https://doi.org/10.1109/ICIP.2018.8451652

Both dates go through **one** encoder (shared weights: the same features for the same surface, whatever
the date); the decoder receives, at every level, either the absolute difference of the two dates'
skip features (FC-Siam-diff) or both of them concatenated (FC-Siam-conc), and the bottleneck of date 2
(the paper's choice) or of both. The early-fusion counterpart (FC-EF) is
:class:`models.unet.UNetEarlyFusion`. The encoder is U-Net's (:class:`models.unet.ConvBlock`: two
3x3 conv + batch norm + ReLU per level, ``base_filters * 2**i`` filters); the paper's FC networks are
the same shape with 4 levels of 16-128 filters.

The input is the one every change model of the plugin takes, two dates stacked as channels ``(B, 2C,
H, W)`` (date 1 bands, then date 2 bands): the chip folders, the ONNX interface, the model card and
Classify Pixels / Detect Change stay as they are; the network splits the channels in half itself.
"""

from __future__ import annotations

import torch
from torch import nn

from .unet import ConvBlock, check_two_dates


class _SiameseUNet(nn.Module):
    """Shared-encoder U-Net over two dates; subclasses choose how the dates' features are merged.

    Args:
        in_channels: 2C, both dates together (must be even).
        num_classes: K output channels (e.g. "no change" / "change").
        base_filters: filters of the first level; level i has ``base_filters * 2**i``.
        depth: number of 2x poolings, >= 1.
        dropout: Dropout2d rate after the bottleneck block (0 = none).

    Shapes:
        input ``(B, 2C, H, W)`` float32 (normalised), output logits ``(B, K, H, W)`` float32, any H, W >= 1.
    """

    #: How many skip-feature maps per level the decoder receives (1: difference, 2: concatenation).
    merge_factor = 1

    def __init__(
        self, in_channels: int, num_classes: int, base_filters: int = 32, depth: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        check_two_dates(in_channels)
        if depth < 1 or base_filters < 1:
            raise ValueError(f"depth ({depth}) and base_filters ({base_filters}) must be >= 1.")
        self.depth = depth
        c = in_channels // 2
        widths = [base_filters * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList(
            [ConvBlock(c, widths[0])]
            + [ConvBlock(widths[i - 1], widths[i], dropout if i == depth else 0.0) for i in range(1, depth + 1)]
        )
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        k = self.merge_factor
        self.ups = nn.ModuleList(
            [
                nn.ConvTranspose2d(widths[i] * (k if i == depth else 1), widths[i - 1], 2, stride=2)
                for i in range(depth, 0, -1)
            ]
        )
        self.decoders = nn.ModuleList([ConvBlock(widths[i - 1] * (k + 1), widths[i - 1]) for i in range(depth, 0, -1)])
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps of every level of one date ``(B, C, H, W)``, finest first."""
        feats = []
        for i, enc in enumerate(self.encoders):
            x = enc(x if i == 0 else self.pool(x))
            feats.append(x)
        return feats

    def merge(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Merge one level's features of date 1 (``a``) and date 2 (``b``), both ``(B, F, h, w)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, H, W)`` of two dates stacked as channels ``(B, 2C, H, W)``."""
        c = x.shape[1] // 2
        # One pass through the shared encoder for both dates (the batch doubled), then split again.
        feats = self.encode(torch.cat([x[:, :c], x[:, c:]], dim=0))
        n = x.shape[0]
        merged = [self.merge(f[:n], f[n:]) for f in feats]
        y = merged.pop()
        for up, dec in zip(self.ups, self.decoders):
            skip = merged.pop()
            # ceil-mode pooling can make the up-sampled map one pixel larger: crop it to the skip.
            y = up(y)[..., : skip.shape[-2], : skip.shape[-1]]
            y = dec(torch.cat([skip, y], dim=1))
        return self.head(y)


class SiamDiffUNet(_SiameseUNet):
    """FC-Siam-diff (Caye Daudt et al. 2018): the decoder sees ``|f(date 2) - f(date 1)|`` at every level.

    The absolute difference makes the network symmetric in the two dates at the skips; the bottleneck
    is differenced too. Shapes and arguments as :class:`_SiameseUNet`.
    """

    merge_factor = 1

    def merge(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``|b - a|`` ``(B, F, h, w)``."""
        return torch.abs(b - a)


class SiamConcUNet(_SiameseUNet):
    """FC-Siam-conc (Caye Daudt et al. 2018): the decoder sees both dates' features concatenated.

    Shapes and arguments as :class:`_SiameseUNet`.
    """

    merge_factor = 2

    def merge(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``[a, b]`` along channels ``(B, 2F, h, w)``."""
        return torch.cat([a, b], dim=1)
