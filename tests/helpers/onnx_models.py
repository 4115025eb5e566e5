"""Tiny ONNX models with model cards for inference tests (built with torch, a dev dependency)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deeplandcover.core.classes import DEFAULT_PALETTE, ClassInfo
from deeplandcover.core.modelcard import ModelCard, write_card


def conv_net(
    in_ch: int,
    n_classes: int,
    layers: int = 4,
    width: int = 8,
    seed: int = 0,
    softmax: bool = True,
    balance_on: np.ndarray | None = None,
):
    """A seeded fully convolutional net: ``layers`` 3x3 convs (+ReLU), 1x1 head, softmax.

    Receptive field ``2 * layers + 1`` pixels, zero padding, so tile borders matter. With
    ``balance_on`` (a normalised ``(C, H, W)`` sample) the head bias is shifted so that every class
    has the same mean logit there, which gives a class map with many boundaries.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    c = in_ch
    for _ in range(layers):
        mods += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU()]
        c = width
    mods.append(nn.Conv2d(c, n_classes, 1))
    if balance_on is not None:
        with torch.no_grad():
            logits = nn.Sequential(*mods)(torch.from_numpy(balance_on[None].astype(np.float32)))
            mods[-1].bias -= logits.mean(dim=(0, 2, 3))
    if softmax:
        mods.append(nn.Softmax(dim=1))
    return nn.Sequential(*mods).eval()


def export_onnx(net, path: Path, in_shape: tuple[int, ...], dynamic: bool = True) -> Path:
    """Export ``net`` with opset 17 and dynamic batch/height/width (legacy exporter)."""
    import torch

    torch.set_num_threads(1)
    x = torch.zeros(1, *in_shape)
    axes = (
        {
            "input": {0: "batch", len(in_shape) - 1: "height", len(in_shape): "width"},
            "output": {0: "batch", 2: "height", 3: "width"},
        }
        if dynamic
        else None
    )
    torch.onnx.export(
        net,
        x,
        str(path),
        input_names=["input"],
        output_names=["output"],
        opset_version=17,
        dynamic_axes=axes,
        dynamo=False,
    )
    return Path(path)


def make_card(bands: list[str], n_classes: int, mean=None, std=None, **kw) -> ModelCard:
    """A card with classes valued 1..K (so class values differ from channel indexes)."""
    classes = [ClassInfo(value=k + 1, name=f"class{k + 1}", color=DEFAULT_PALETTE[k]) for k in range(n_classes)]
    return ModelCard(
        architecture="testconv",
        bands=list(bands),
        mean=list(mean or [100.0] * len(bands)),
        std=list(std or [30.0] * len(bands)),
        classes=classes,
        **kw,
    )


#: The 4-band Sentinel-2 card of the export tests (:func:`export_card`): bands, mean, std.
EXPORT_BANDS = ["B02", "B03", "B04", "B08"]
EXPORT_MEAN, EXPORT_STD = [100.0, 110.0, 90.0, 120.0], [30.0, 25.0, 35.0, 28.0]


def export_card(**kw) -> ModelCard:
    """A U-Net card of :data:`EXPORT_BANDS`, classes valued 1, 4, 9, 64 px tiles at 10 m; ``kw`` overrides."""
    base = dict(
        architecture="unet",
        bands=EXPORT_BANDS,
        mean=EXPORT_MEAN,
        std=EXPORT_STD,
        classes=[ClassInfo(v, f"class{v}", DEFAULT_PALETTE[i]) for i, v in enumerate((1, 4, 9))],
        tile_size=64,
        overlap=16,
        pixel_size=[10.0, 10.0],
    )
    return ModelCard(**{**base, **kw})


def make_model(
    path: Path,
    bands: list[str],
    n_classes: int = 3,
    layers: int = 4,
    seed: int = 0,
    softmax: bool = True,
    balance_on: np.ndarray | None = None,
    **card_kw,
) -> Path:
    """Export a :func:`conv_net` to ``path`` and store its card (mean 100, std 30 unless given).

    ``balance_on``: a raw ``(C, H, W)`` image to balance the classes on (see :func:`conv_net`).
    """
    mean, std = card_kw.get("mean") or [100.0] * len(bands), card_kw.get("std") or [30.0] * len(bands)
    norm = None
    if balance_on is not None:
        norm = (balance_on.astype(np.float32) - np.float32(mean)[:, None, None]) / np.float32(std)[:, None, None]
    net = conv_net(len(bands), n_classes, layers=layers, seed=seed, softmax=softmax, balance_on=norm)
    export_onnx(net, path, (len(bands), 64, 64))
    card_kw.setdefault("output", "probabilities" if softmax else "logits")
    write_card(path, make_card(bands, n_classes, **card_kw))
    return path


def smooth_image(c: int, h: int, w: int, seed: int = 0, dtype=np.uint16) -> np.ndarray:
    """``(c, h, w)`` spatially correlated noise in 40..160 (a plausible 'image')."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    a = rng.normal(size=(c, h, w)).astype(np.float32)
    a = np.stack([gaussian_filter(b, 3) for b in a])
    a = (a - a.mean()) / (a.std() + 1e-6)
    return np.clip(100 + 30 * a, 1, 250).astype(dtype)


def make_series_model(path: Path, bands: list[str], time_steps: int, n_classes: int = 3, seed: int = 0) -> Path:
    """A ``(B, T, C, H, W)`` model: per-date conv net, mean over dates, softmax; card layout BTCHW."""
    import torch
    from torch import nn

    class Series(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = conv_net(len(bands), n_classes, layers=2, seed=seed, softmax=False)

        def forward(self, x):  # (B, T, C, H, W)
            b, t, c, h, w = x.shape
            y = self.net(x.reshape(b * t, c, h, w)).reshape(b, t, -1, h, w).mean(dim=1)
            return torch.softmax(y, dim=1)

    torch.set_num_threads(1)
    x = torch.zeros(1, time_steps, len(bands), 32, 32)
    torch.onnx.export(
        Series().eval(),
        x,
        str(path),
        input_names=["input"],
        output_names=["output"],
        opset_version=17,
        dynamic_axes={"input": {0: "batch", 3: "height", 4: "width"}, "output": {0: "batch", 2: "height", 3: "width"}},
        dynamo=False,
    )
    write_card(path, make_card(bands, n_classes, layout="BTCHW", time_steps=time_steps, tile_size=64, overlap=16))
    return Path(path)
