"""Training losses and class weights for semantic segmentation with ignored pixels.

All losses take logits ``(B, K, H, W)`` float and targets ``(B, H, W)`` int64 with
:data:`IGNORE_INDEX` (255) for unlabelled / nodata pixels, which contribute nothing (seed
000_92b8837726c3be0f.txt keeps incomplete tiles by masking their empty pixels out of the loss).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..raster.grid import IGNORE_INDEX

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def class_weights(counts: np.ndarray, mode: Literal["none", "inverse", "median"]) -> np.ndarray | None:
    """Per-class loss weights from labelled pixel counts.

    Args:
        counts: ``(K,)`` labelled training pixels per class.
        mode: ``"none"`` (None returned), ``"inverse"`` (``w_k = N / (K' * n_k)``, K' classes present:
            weighted categorical cross-entropy of seed 001_d6382e1c23847c35.txt) or ``"median"``
            (median frequency balancing, ``w_k = median(f) / f_k``, Eigen & Fergus, ICCV 2015).

    Returns:
        ``(K,)`` float32 weights, 0 for classes absent from the training chips; or None.
    """
    if mode == "none":
        return None
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    w = np.zeros_like(counts)
    if not present.any():
        return None
    if mode == "inverse":
        w[present] = counts[present].sum() / (present.sum() * counts[present])
    elif mode == "median":
        f = counts[present] / counts[present].sum()
        w[present] = np.median(f) / f
    else:
        raise ValueError(f"Unknown class weighting {mode!r}; use none, inverse or median.")
    return w.astype(np.float32)


def weighted_ce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean (class-weighted) cross-entropy over labelled pixels; 0 when a batch has none."""
    loss = F.cross_entropy(logits.float(), target, weight=weight, ignore_index=IGNORE_INDEX, reduction="sum")
    valid = target != IGNORE_INDEX
    denom = weight[target[valid]].sum() if weight is not None else valid.sum()
    return loss / denom.clamp_min(1e-6)


def soft_jaccard(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Differentiable Jaccard index averaged over classes (Iglovikov et al., 2017), labelled pixels only.

    ``J = mean_k (sum p_k y_k + s) / (sum p_k + sum y_k - sum p_k y_k + s)`` with softmax
    probabilities ``p`` and one-hot targets ``y``; ``s`` smooths classes absent from the batch.
    """
    k = logits.shape[1]
    valid = (target != IGNORE_INDEX).unsqueeze(1).float()
    prob = torch.softmax(logits.float(), dim=1) * valid
    onehot = F.one_hot(target.clamp_max(k - 1) * (target != IGNORE_INDEX), k).permute(0, 3, 1, 2).float() * valid
    dims = (0, 2, 3)
    inter = (prob * onehot).sum(dims)
    union = prob.sum(dims) + onehot.sum(dims) - inter
    return ((inter + smooth) / (union + smooth)).mean()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss ``-alpha_k (1 - p_t)^gamma log p_t`` (Lin et al., ICCV 2017), mean over labelled pixels.

    ``alpha_k`` are the class weights (1 when None).
    """
    valid = target != IGNORE_INDEX
    if not valid.any():
        return logits.sum() * 0.0
    logp = F.log_softmax(logits.float(), dim=1).permute(0, 2, 3, 1)[valid]  # (N, K)
    t = target[valid]
    logpt = logp.gather(1, t[:, None])[:, 0]
    loss = -((1 - logpt.exp()) ** gamma) * logpt
    if weight is not None:
        a = weight[t]
        return (a * loss).sum() / a.sum().clamp_min(1e-6)
    return loss.mean()


def make_loss(name: Literal["ce", "ce_jaccard", "focal"], weight: torch.Tensor | None = None,
              alpha: float = 0.5, gamma: float = 2.0) -> LossFn:
    """The training loss ``loss(logits, target) -> scalar``.

    Args:
        name: ``"ce"`` (cross-entropy), ``"ce_jaccard"`` (``L = a * CE - (1 - a) * log(J)``, equation (2)
            of seed 002_5f5c797ac4c9541b.txt, J = :func:`soft_jaccard`) or ``"focal"`` (:func:`focal_loss`).
        weight: ``(K,)`` class weights on the logits' device, or None.
        alpha: ``a`` of ``ce_jaccard``, in [0, 1].
        gamma: focusing parameter of the focal loss.

    Raises:
        ValueError: unknown name or alpha outside [0, 1].
    """
    if name == "ce":
        return lambda lo, t: weighted_ce(lo, t, weight)
    if name == "ce_jaccard":
        if not 0 <= alpha <= 1:
            raise ValueError(f"The Jaccard alpha must be in [0, 1], got {alpha}.")
        return lambda lo, t: alpha * weighted_ce(lo, t, weight) - (1 - alpha) * torch.log(soft_jaccard(lo, t))
    if name == "focal":
        return lambda lo, t: focal_loss(lo, t, weight, gamma)
    raise ValueError(f"Unknown loss {name!r}; use ce, ce_jaccard or focal.")


def confusion(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K) int64`` confusion matrix (rows reference, columns prediction) via ``np.bincount``.

    Pixels whose target is :data:`IGNORE_INDEX` (or outside 0..K-1) are skipped.
    """
    t = target.ravel().astype(np.int64)
    p = pred.ravel().astype(np.int64)
    ok = (t >= 0) & (t < num_classes)
    return np.bincount(t[ok] * num_classes + p[ok], minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores(cm: np.ndarray) -> dict[str, object]:
    """OA, per-class IoU / F1 / precision / recall, mIoU and macro F1 from a confusion matrix.

    mIoU and macro F1 average over classes present in the reference (row sum > 0).
    """
    cm = cm.astype(np.float64)
    tp = np.diag(cm)
    ref, pred = cm.sum(1), cm.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (ref + pred - tp)
        f1 = 2 * tp / (ref + pred)
        prec = tp / pred
        rec = tp / ref
    present = ref > 0
    clean = lambda a: [float(v) if np.isfinite(v) else 0.0 for v in a]  # noqa: E731
    return {
        "oa": float(tp.sum() / max(cm.sum(), 1)),
        "miou": float(np.nan_to_num(iou[present]).mean()) if present.any() else 0.0,
        "f1": float(np.nan_to_num(f1[present]).mean()) if present.any() else 0.0,
        "iou_per_class": clean(iou), "f1_per_class": clean(f1),
        "precision_per_class": clean(prec), "recall_per_class": clean(rec),
        "support": [int(v) for v in ref],
    }
