"""The decision threshold of a two-class change model, chosen on the validation chips.

Change is 1-4 % of the pixels of an urban change data set such as OSCD (Caye Daudt et al., IGARSS 2018),
and a network trained with class weights calls change wherever it is unsure: the argmax of its
probabilities (a threshold of 0.5 on P(change)) is rarely the threshold with the best change F1. After
training, :func:`choose_threshold` sweeps the threshold on the validation pixels and keeps the one with
the best F1 of the "change" class; :class:`LogitOffset` then builds it into the exported network as a
constant added to the logits (``z_change - log(t / (1 - t))``), so that the argmax of the ONNX model's
output, in Classify Pixels, Detect Change, Deepness or any ONNX runtime, is the thresholded decision.
This is the logit adjustment of Menon, A. K., Jayasumana, S., Rawat, A. S., Jain, H., Veit, A., &
Kumar, S. (2021). Long-tail learning via logit adjustment. ICLR 2021, with the offset chosen on
validation data instead of from the class priors. The exported probabilities are those of the adjusted
logits (0.5 at the chosen threshold); the threshold itself is recorded in the model card.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import distributed as dist_utils

#: Logit-difference bins of the sweep: ``z_change - z_no_change`` from -LIMIT to LIMIT in STEPS steps.
LIMIT, STEPS = 16.0, 640


@dataclass(frozen=True)
class Threshold:
    """The chosen decision threshold of a two-class model.

    Attributes:
        probability: P(change) above which a pixel is change, in (0, 1) (0.5 = the plain argmax).
        logit_offset: the constant added to the change logit, ``-log(t / (1 - t))``.
        f1_argmax, f1: change F1 on the validation pixels with the plain argmax and with the threshold.
        pixels: labelled validation pixels the threshold was chosen on.
    """

    probability: float
    logit_offset: float
    f1_argmax: float
    f1: float
    pixels: int

    def to_dict(self) -> dict[str, Any]:
        """The card's ``training.decision_threshold`` entry."""
        return {
            "class_index": 1,
            "probability": round(self.probability, 4),
            "logit_offset": round(self.logit_offset, 4),
            "val_f1_argmax": round(self.f1_argmax, 4),
            "val_f1": round(self.f1, 4),
            "val_pixels": self.pixels,
            "method": "change-F1-optimal threshold on the validation chips, built into the logits",
        }


class LogitOffset(nn.Module):
    """``model(x) + offset`` with ``offset`` ``(K,)`` broadcast over ``(B, K, H, W)`` logits (exported as one Add)."""

    def __init__(self, model: nn.Module, offset: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("offset", offset.reshape(1, -1, 1, 1).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Adjusted logits ``(B, K, H, W)``."""
        return self.model(x) + self.offset


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    den = 2 * tp + fp + fn
    return np.where(den > 0, 2 * tp / np.maximum(den, 1), 0.0)


@torch.no_grad()
def logit_histograms(model: nn.Module, loader, device, ctx=None) -> tuple[np.ndarray, np.ndarray]:
    """Histograms ``(STEPS + 2,)`` int64 of ``z1 - z0`` on the validation pixels of class 1 and of class 0.

    Bin 0 holds values below -LIMIT, the last bin those above LIMIT. Under DDP the histograms of the
    ranks are summed, so every rank returns the same.
    """
    model.eval()
    edges = torch.linspace(-LIMIT, LIMIT, STEPS + 1, device=device)
    pos = torch.zeros(STEPS + 2, dtype=torch.int64, device=device)
    neg = torch.zeros_like(pos)
    for x, y in loader:
        logits = model(x.to(device)).float()
        y = y.to(device)
        d = (logits[:, 1] - logits[:, 0])[y <= 1]
        lab = y[y <= 1]
        idx = torch.bucketize(d, edges)
        pos += torch.bincount(idx[lab == 1], minlength=STEPS + 2)
        neg += torch.bincount(idx[lab == 0], minlength=STEPS + 2)
    hist = np.stack([pos.cpu().numpy(), neg.cpu().numpy()])
    if ctx is not None and ctx.enabled:
        hist = dist_utils.all_reduce_sum(ctx, hist, device).astype(np.int64)
    return hist[0], hist[1]


def choose_threshold(pos: np.ndarray, neg: np.ndarray) -> Threshold | None:
    """The threshold with the best change F1 from :func:`logit_histograms`; None without change pixels.

    Predicting change for ``d >= edge[i]`` keeps the pixels of bins ``i + 1`` and up. Among equal F1s the
    threshold nearest 0.5 wins (the plain argmax when it is as good).
    """
    if pos.sum() == 0 or neg.sum() == 0:
        return None
    edges = np.linspace(-LIMIT, LIMIT, STEPS + 1)
    tp = np.cumsum(pos[::-1])[::-1][1:]  # class-1 pixels at or above each edge
    fp = np.cumsum(neg[::-1])[::-1][1:]
    fn = pos.sum() - tp
    f1 = _f1(tp, fp, fn)
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    i = int(best[np.argmin(np.abs(edges[best]))])
    zero = int(np.argmin(np.abs(edges)))
    d = float(edges[i])
    return Threshold(1.0 / (1.0 + math.exp(-d)), -d, float(f1[zero]), float(f1[i]), int(pos.sum() + neg.sum()))


def calibrate(model: nn.Module, loader, device, ctx=None) -> tuple[nn.Module, Threshold | None]:
    """``model`` wrapped in a :class:`LogitOffset` that applies the best-F1 change threshold, and the threshold.

    Returns ``(model, None)`` unchanged when the validation chips hold no change or no no-change pixel,
    or when the best threshold is the plain argmax.
    """
    thr = choose_threshold(*logit_histograms(model, loader, device, ctx))
    if thr is None or thr.logit_offset == 0.0:
        return model, thr
    offset = torch.tensor([0.0, thr.logit_offset], device=device)
    return LogitOffset(model, offset), thr
