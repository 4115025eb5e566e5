"""Confusion matrices and accuracy scores, in pure NumPy (no raster I/O: see :mod:`.reference`).

Used by Compute Accuracy and by the validation of Train Model alike.

Conventions (the same in every function, CSV and report of the project):

- A confusion matrix is ``(K, K) int64`` with **rows = reference** (truth) and **columns =
  predicted** (map) classes, in the order of a ``classes`` sequence of class values.
- Precision = user's accuracy (column-wise), recall = producer's accuracy (row-wise).
- A score whose denominator is zero (e.g. the precision of a class never predicted) is ``None``,
  never NaN and never 0, and is computed without a division warning.

Pixel-count scores (:func:`accuracy_scores`) describe the pixels compared. When the reference is a
stratified random sample of points, :func:`core.assessment.area_estimates.olofsson_estimates` gives
the design-based, area-weighted estimators of Olofsson et al. (2014).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..classes import IGNORE_INDEX
from ..errors import InputError


# ------------------------------------------------------------------------------ matrices
def confusion_matrix(
    reference: np.ndarray, predicted: np.ndarray, classes: Sequence[int], ignore: Sequence[int] = (IGNORE_INDEX,)
) -> np.ndarray:
    """Confusion matrix of two class arrays, via :func:`numpy.bincount`.

    Args:
        reference: reference (true) class values, any shape, integer dtype.
        predicted: predicted class values, same shape as ``reference``.
        classes: the K class values, in matrix order. Pixels whose reference or prediction is not in
            ``classes`` are left out (count them with :class:`PairCounts` to report them).
        ignore: values excluded on either side (nodata, unlabelled).

    Returns:
        ``(K, K) int64``: ``cm[i, j]`` = pixels of reference class ``classes[i]`` predicted as ``classes[j]``.

    Raises:
        InputError: shapes differ or ``classes`` has duplicates.
    """
    ref = np.asarray(reference).ravel()
    pred = np.asarray(predicted).ravel()
    if ref.shape != pred.shape:
        raise InputError(f"Reference and prediction differ in size ({np.shape(reference)} vs {np.shape(predicted)}).")
    cls = np.asarray(list(classes), dtype=np.int64)
    k = len(cls)
    if len(np.unique(cls)) != k:
        raise InputError(f"Class values must be unique, got {list(cls)}.")
    if k == 0:
        return np.zeros((0, 0), dtype=np.int64)
    order = np.argsort(cls)
    sorted_cls = cls[order]

    def index_of(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = values.astype(np.int64, copy=False)
        pos = np.clip(np.searchsorted(sorted_cls, v), 0, k - 1)
        return order[pos], sorted_cls[pos] == v

    ri, rok = index_of(ref)
    pi, pok = index_of(pred)
    keep = rok & pok
    for v in ignore:
        keep &= (ref != v) & (pred != v)
    codes = ri[keep] * k + pi[keep]
    return np.bincount(codes, minlength=k * k).astype(np.int64).reshape(k, k)


class PairCounts:
    """Streaming counter of (reference value, predicted value) pairs over many windows.

    Counts every pair, including values not in the final class list, so that classes present in
    the reference but unknown to the classification can be reported. Pairs of two 0..255 values
    (the usual uint8 class rasters) are counted with one dense ``bincount``; others through
    :func:`numpy.unique`.
    """

    def __init__(self) -> None:
        self.dense = np.zeros(256 * 256, dtype=np.int64)
        self.sparse: dict[tuple[int, int], int] = {}

    def add(self, reference: np.ndarray, predicted: np.ndarray) -> None:
        """Count the pairs of two same-shape integer arrays (already masked: pass only valid pixels)."""
        r = np.asarray(reference, dtype=np.int64).ravel()
        p = np.asarray(predicted, dtype=np.int64).ravel()
        if r.size == 0:
            return
        small = (r >= 0) & (r < 256) & (p >= 0) & (p < 256)
        self.dense += np.bincount(r[small] * 256 + p[small], minlength=256 * 256)
        if not small.all():
            pairs, counts = np.unique(np.stack([r[~small], p[~small]], axis=1), axis=0, return_counts=True)
            for (a, b), c in zip(pairs.tolist(), counts.tolist()):
                self.sparse[(a, b)] = self.sparse.get((a, b), 0) + int(c)

    def items(self) -> dict[tuple[int, int], int]:
        """All non-zero ``{(reference, predicted): count}``."""
        out = dict(self.sparse)
        for code in np.flatnonzero(self.dense).tolist():
            key = (code // 256, code % 256)
            out[key] = out.get(key, 0) + int(self.dense[code])
        return out

    def reference_values(self) -> list[int]:
        """Sorted values seen in the reference."""
        return sorted({r for r, _ in self.items()})

    def predicted_values(self) -> list[int]:
        """Sorted values seen in the prediction."""
        return sorted({p for _, p in self.items()})

    def matrix(self, classes: Sequence[int]) -> np.ndarray:
        """``(K, K) int64`` confusion matrix over ``classes`` (rows reference, columns predicted)."""
        idx = {int(v): i for i, v in enumerate(classes)}
        cm = np.zeros((len(idx), len(idx)), dtype=np.int64)
        for (r, p), c in self.items().items():
            if r in idx and p in idx:
                cm[idx[r], idx[p]] += c
        return cm

    def unmatched_reference(self, classes: Sequence[int]) -> dict[int, int]:
        """``{reference value: pixels}`` for reference values not in ``classes``."""
        known = {int(v) for v in classes}
        out: dict[int, int] = {}
        for (r, _), c in self.items().items():
            if r not in known:
                out[r] = out.get(r, 0) + c
        return out


# -------------------------------------------------------------------------------- scores
def ratio(a: float, b: float) -> float | None:
    """``a / b`` as a float, or None when ``b`` is 0 (an undefined score, never NaN and never a warning)."""
    return float(a) / float(b) if b else None


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(sum(vals) / len(vals)) if vals else None


@dataclass
class AccuracyReport:
    """Pixel-count accuracy of a classification (see :func:`accuracy_scores`).

    Attributes:
        class_values, class_names: the K classes in matrix order.
        matrix: ``(K, K) int64`` confusion matrix, rows reference, columns predicted.
        total: pixels compared (sum of the matrix).
        overall_accuracy: trace / total, or None when total is 0.
        kappa: Cohen's kappa (Cohen 1960), None when undefined (chance agreement 1).
        precision: per-class user's accuracy TP / (TP + FP), None when never predicted.
        recall: per-class producer's accuracy TP / (TP + FN), None when absent from the reference.
        f1: per-class 2TP / (2TP + FP + FN), None when the class is absent on both sides.
        iou: per-class TP / (TP + FP + FN) (Jaccard), None when absent on both sides.
        support: reference pixels per class (row sums). ``predicted``: column sums.
        mean_iou, macro_f1: means over the classes where the score is defined.
        unknown_reference: ``{value: pixels}`` of reference classes the classification does not know.
        olofsson: area-weighted estimates (:func:`core.assessment.area_estimates.olofsson_estimates`) when the reference is a
            stratified sample, else None.
        meta: free-form context (reference kind, point counts, class colours) for reports.
    """

    class_values: list[int]
    class_names: list[str]
    matrix: np.ndarray
    total: int
    overall_accuracy: float | None
    kappa: float | None
    precision: list[float | None]
    recall: list[float | None]
    f1: list[float | None]
    iou: list[float | None]
    support: list[int]
    predicted: list[int]
    mean_iou: float | None
    macro_f1: float | None
    unknown_reference: dict[int, int] = field(default_factory=dict)
    olofsson: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def per_class(self) -> list[dict[str, Any]]:
        """One dict per class: value, name, precision, recall, f1, iou, support, predicted."""
        return [
            {"value": v, "name": n, "precision": p, "recall": r, "f1": f, "iou": j, "support": s, "predicted": q}
            for v, n, p, r, f, j, s, q in zip(
                self.class_values,
                self.class_names,
                self.precision,
                self.recall,
                self.f1,
                self.iou,
                self.support,
                self.predicted,
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (None stays None → ``null``)."""
        d = asdict(self)
        d["matrix"] = self.matrix.tolist()
        d["unknown_reference"] = {str(k): v for k, v in self.unknown_reference.items()}
        d["per_class"] = self.per_class()
        return d


def cohen_kappa(cm: np.ndarray) -> float | None:
    """Cohen's kappa ``(p_o - p_e) / (1 - p_e)`` of a confusion matrix (Cohen 1960).

    Computed as ``1 - sum(W * cm) / sum(W * E)`` with W the off-diagonal indicator and E the
    expected counts under chance agreement, the form scikit-learn uses, so results agree to the bit.

    Returns:
        kappa, or None when the matrix is empty or chance disagreement is 0.
    """
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum()
    if total == 0:
        return None
    expected = np.outer(cm.sum(axis=1), cm.sum(axis=0)) / total
    w = np.ones_like(cm)
    np.fill_diagonal(w, 0)
    denom = float(np.sum(w * expected))
    if denom == 0:
        return None
    return 1.0 - float(np.sum(w * cm)) / denom


def accuracy_scores(
    cm: np.ndarray,
    class_values: Sequence[int],
    class_names: Sequence[str] | None = None,
    unknown_reference: dict[int, int] | None = None,
) -> AccuracyReport:
    """Overall and per-class scores of a confusion matrix.

    Args:
        cm: ``(K, K)`` integer confusion matrix, rows reference, columns predicted.
        class_values: the K class values in matrix order.
        class_names: K display names (default: the values as text).
        unknown_reference: reference values missing from the classes, with pixel counts (reported).

    Returns:
        The :class:`AccuracyReport`; undefined scores are None.

    Raises:
        InputError: ``cm`` is not square or does not match the number of classes.
    """
    cm = np.asarray(cm, dtype=np.int64)
    k = len(class_values)
    if cm.shape != (k, k):
        raise InputError(f"The confusion matrix is {cm.shape} but {k} classes were given.")
    names = [str(n) for n in class_names] if class_names is not None else [str(v) for v in class_values]
    if len(names) != k:
        raise InputError(f"{len(names)} class names for {k} classes.")
    tp = np.diag(cm)
    rows, cols = cm.sum(axis=1), cm.sum(axis=0)
    total = int(cm.sum())
    fp, fn = cols - tp, rows - tp
    precision = [ratio(tp[i], cols[i]) for i in range(k)]
    recall = [ratio(tp[i], rows[i]) for i in range(k)]
    f1 = [ratio(2 * tp[i], 2 * tp[i] + fp[i] + fn[i]) for i in range(k)]
    iou = [ratio(tp[i], tp[i] + fp[i] + fn[i]) for i in range(k)]
    return AccuracyReport(
        class_values=[int(v) for v in class_values],
        class_names=names,
        matrix=cm,
        total=total,
        overall_accuracy=ratio(int(tp.sum()), total),
        kappa=cohen_kappa(cm),
        precision=precision,
        recall=recall,
        f1=f1,
        iou=iou,
        support=[int(x) for x in rows],
        predicted=[int(x) for x in cols],
        mean_iou=_mean(iou),
        macro_f1=_mean(f1),
        unknown_reference=dict(unknown_reference or {}),
    )


def binary_scores(cm: np.ndarray, positive: int = 1) -> dict[str, float | None]:
    """Precision, recall and F1 of the class at index ``positive`` of a confusion matrix.

    Used for change detection (``[no change, change]``).
    """
    rep = accuracy_scores(cm, list(range(len(cm))))
    return {
        "precision": rep.precision[positive],
        "recall": rep.recall[positive],
        "f1": rep.f1[positive],
        "overall_accuracy": rep.overall_accuracy,
        "kappa": rep.kappa,
    }


# ---------------------------------------------------------------- Olofsson et al. (2014)
