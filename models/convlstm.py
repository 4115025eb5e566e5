"""U-Net + ConvLSTM for image time series.

After Kamdem De Teyou, G., Tarabalka, Y., Manighetti, I., Almar, R., & Tripodi, S. (2020). Deep Neural
Networks for Automatic Extraction of Features in Time Series Optical Satellite Images. Int. Arch.
Photogramm. Remote Sens. Spatial Inf. Sci., XLIII-B2-2020, 1529-1535.
https://doi.org/10.5194/isprs-archives-XLIII-B2-2020-1529-2020 . ConvLSTM: Shi, X., Chen, Z., Wang, H.,
Yeung, D.-Y., Wong, W., & Woo, W. (2015). Convolutional LSTM Network: A Machine Learning Approach for
Precipitation Nowcasting. NeurIPS 2015.

A shared U-Net turns each date into a per-date class probability map (PMap); two ConvLSTM layers
(k = 3, 32 filters) combine the T maps with their short- and long-term memories; a 1x1 convolution
maps the last hidden state to class logits. Sefrin, O., Riese, F. M., & Keller, S. (2021). Deep
Learning for Land Cover Change Detection. Remote Sensing, 13(1), 78 (https://doi.org/10.3390/rs13010078)
train the same FCN first on single images and use it as the pretrained base of the LSTM model: load a
``unet`` state dict into :attr:`UNetConvLSTM.unet` for that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .unet import UNet


class ConvLSTMCell(nn.Module):
    """ConvLSTM cell, equation (1) of Kamdem De Teyou et al. (2020), after Shi et al. (NeurIPS 2015)::

        i_t = sigma(W_xi * x_t + W_hi * h_{t-1} + w_ci . c_{t-1} + b_i)
        f_t = sigma(W_xf * x_t + W_hf * h_{t-1} + w_cf . c_{t-1} + b_f)
        c_t = f_t . c_{t-1} + i_t . tanh(W_xc * x_t + W_hc * h_{t-1} + b_c)
        o_t = sigma(W_xo * x_t + W_ho * h_{t-1} + w_co . c_{t-1} + b_o)
        h_t = o_t . tanh(c_t)

    ``*`` is a k x k convolution, ``.`` the Hadamard product. The peephole weights ``w_c*`` are one
    per channel (broadcast over the image) so that the cell runs on any H, W. At t = 0 the states
    are zero, so the h- and c-terms are skipped instead of convolving zeros (same result, and the
    ONNX graph needs no dynamically shaped zero tensors).

    Args:
        in_channels: d, channels of x_t.
        hidden: r, filters of the recurrent layer (the paper: 32).
        kernel_size: k (the paper: 3).
    """

    def __init__(self, in_channels: int, hidden: int = 32, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden = hidden
        self.conv_x = nn.Conv2d(in_channels, 4 * hidden, kernel_size, padding=kernel_size // 2)
        self.conv_h = nn.Conv2d(hidden, 4 * hidden, kernel_size, padding=kernel_size // 2, bias=False)
        self.w_c = nn.Parameter(torch.zeros(3, hidden, 1, 1))  # peepholes for i, f, o

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``x`` ``(B, d, H, W)``, state ``(h, c)`` each ``(B, r, H, W)`` or None (t = 0)."""
        gates = self.conv_x(x)
        if state is not None:
            h, c = state
            gates = gates + self.conv_h(h)
        gi, gf, gc, go = torch.chunk(gates, 4, dim=1)
        if state is None:
            i = torch.sigmoid(gi)
            c_new = i * torch.tanh(gc)
            o = torch.sigmoid(go)
        else:
            i = torch.sigmoid(gi + self.w_c[0] * c)
            f = torch.sigmoid(gf + self.w_c[1] * c)
            c_new = f * c + i * torch.tanh(gc)
            o = torch.sigmoid(go + self.w_c[2] * c)
        return o * torch.tanh(c_new), c_new


@dataclass(frozen=True)
class ConvLSTMConfig:
    """The fixed choices of :class:`UNetConvLSTM`'s recurrent part (the paper's by default).

    Attributes:
        kernel_size: k of the ConvLSTM convolutions (the paper: 3).
        pmap: True (the paper) feeds the per-date softmax probability maps to the ConvLSTM; False feeds
            the per-date logits.
    """

    kernel_size: int = 3
    pmap: bool = True


class UNetConvLSTM(nn.Module):
    """Shared U-Net per date -> two ConvLSTM layers -> 1x1 convolution (Kamdem De Teyou et al. 2020, Fig. 6).

    Args:
        in_channels: C bands of one date.
        num_classes: K output channels.
        base_filters, depth: of the per-date :class:`~models.unet.UNet` (the paper: 32 filters).
        hidden: r filters of both ConvLSTM layers (the paper: 32).
        lstm: kernel size and input of the ConvLSTM layers (:class:`ConvLSTMConfig`, or its fields as a dict,
            as JSON ``arch_params`` give them: ``{"lstm": {"kernel_size": 5}}``); None: the paper's.

    Shapes:
        input ``(B, T, C, H, W)`` float32 (dates oldest first), output logits ``(B, K, H, W)`` float32.
        T is fixed by the training data; the exported ONNX graph is unrolled over it.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        base_filters: int = 32,
        depth: int = 4,
        hidden: int = 32,
        lstm: ConvLSTMConfig | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        cfg = lstm if isinstance(lstm, ConvLSTMConfig) else ConvLSTMConfig(**(lstm or {}))
        self.unet = UNet(in_channels, num_classes, base_filters, depth)
        self.pmap = cfg.pmap
        self.lstm1 = ConvLSTMCell(num_classes, hidden, cfg.kernel_size)
        self.lstm2 = ConvLSTMCell(hidden, hidden, cfg.kernel_size)
        self.head = nn.Conv2d(hidden, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, H, W)`` of the sequence ``x`` ``(B, T, C, H, W)``."""
        if x.dim() != 5:
            raise ValueError(f"unet_convlstm expects (B, T, C, H, W) input, got {tuple(x.shape)}.")
        t = x.shape[1]
        y = self.unet(x.flatten(0, 1))  # (B*T, K, H, W): one shared U-Net for every date
        if self.pmap:
            y = torch.softmax(y, dim=1)
        y = y.unflatten(0, (-1, t))
        s1 = s2 = None
        for step in range(t):
            s1 = self.lstm1(y[:, step], s1)
            s2 = self.lstm2(s1[0], s2)
        return self.head(s2[0])
