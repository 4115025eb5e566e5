"""Training losses and class weights for semantic segmentation with ignored pixels.

All losses take logits ``(B, K, H, W)`` float and targets ``(B, H, W)`` int64 with
:data:`IGNORE_INDEX` (255) for unlabelled / nodata pixels, which contribute nothing (Sefrin, O., Riese,
F. M., & Keller, S. (2021). Deep Learning for Land Cover Change Detection. Remote Sensing, 13(1), 78.
https://doi.org/10.3390/rs13010078 keep incomplete tiles by masking their empty pixels out of the loss).
Validation scores are not losses: they are Compute Accuracy's (:mod:`core.assessment.metrics`, used
through :func:`core.training.steps.validation_metrics`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..classes import IGNORE_INDEX
from .config import CHOICES, ClassWeighting, LossName, one_of

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def class_weights(counts: np.ndarray, mode: ClassWeighting) -> np.ndarray | None:
    """Per-class loss weights from labelled pixel counts.

    Args:
        counts: ``(K,)`` labelled training pixels per class.
        mode: ``"none"`` (None returned), ``"inverse"`` (``w_k = N / (K' * n_k)``, K' classes present:
            weighted categorical cross-entropy of Cherif, Hell & Brandmeier 2022, DeepForest,
            https://doi.org/10.3390/rs14195000) or ``"median"``
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
        raise ValueError(f"Unknown class weighting {mode!r}; use {one_of(CHOICES['class_weights'])}.")
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


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, gamma: float = 2.0
) -> torch.Tensor:
    """Focal loss ``-alpha_k (1 - p_t)^gamma log p_t``, mean over labelled pixels.

    Lin, T.-Y., Goyal, P., Girshick, R., He, K., & Dollár, P. (2017). Focal Loss for Dense Object
    Detection. ICCV 2017.

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


def make_loss(name: LossName, weight: torch.Tensor | None = None, alpha: float = 0.5, gamma: float = 2.0) -> LossFn:
    """The training loss ``loss(logits, target) -> scalar``.

    Args:
        name: ``"ce"`` (cross-entropy), ``"ce_jaccard"`` (``L = a * CE - (1 - a) * log(J)``, equation (2)
            of Kamdem De Teyou et al. 2020, https://doi.org/10.5194/isprs-archives-XLIII-B2-2020-1529-2020,
            J = :func:`soft_jaccard`) or ``"focal"`` (:func:`focal_loss`).
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
    raise ValueError(f"Unknown loss {name!r}; use {one_of(CHOICES['loss'])}.")
