"""Confusion matrices and accuracy scores of classified rasters.

Conventions (the same in every function, CSV and report of the project):

- A confusion matrix is ``(K, K) int64`` with **rows = reference** (truth) and **columns =
  predicted** (map) classes, in the order of a ``classes`` sequence of class values.
- Precision = user's accuracy (column-wise), recall = producer's accuracy (row-wise).
- A score whose denominator is zero (e.g. the precision of a class never predicted) is ``None``,
  never NaN and never 0, and is computed without a division warning.

Pixel-count scores (:func:`accuracy_scores`) describe the pixels compared. When the reference is a
stratified random sample of points, :func:`olofsson_estimates` gives the design-based, area-weighted
estimators of Olofsson et al. (2014), "Good practices for estimating area and assessing accuracy of
land change", Remote Sensing of Environment 148:42-57, doi:10.1016/j.rse.2014.02.015.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Union

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from ..errors import InputError
from ..feedback import Feedback, check_canceled, ensure_feedback
from ..raster.grid import IGNORE_INDEX, RasterGrid, aligned
from ..raster.tiling import disjoint_windows

#: A reference given to :func:`accumulate_confusion`: a raster path, or a function returning the
#: ``(H, W)`` reference values of a window of the classified grid (e.g. rasterized polygons).
ReferenceSource = Union[str, os.PathLike, Callable[[Window, RasterGrid], np.ndarray]]


# ------------------------------------------------------------------------------ matrices
def confusion_matrix(reference: np.ndarray, predicted: np.ndarray, classes: Sequence[int],
                     ignore: Sequence[int] = (IGNORE_INDEX,)) -> np.ndarray:
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


def _read_band(ds, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """First band of ``window`` and its validity (not nodata, not NaN)."""
    a = ds.read(1, window=window)
    ok = np.ones(a.shape, dtype=bool)
    if np.issubdtype(a.dtype, np.floating):
        ok &= ~np.isnan(a)
    if ds.nodata is not None and not np.isnan(ds.nodata):
        ok &= a != ds.nodata
    return a, ok


def accumulate_confusion(pred_path: str | os.PathLike, reference: ReferenceSource, *,
                         ignore: Sequence[int] = (IGNORE_INDEX,), window_size: int = 1024,
                         feedback: Feedback | None = None) -> PairCounts:
    """Count (reference, predicted) pairs window by window, in bounded memory.

    Reads the classified raster in disjoint ``window_size`` windows (:func:`disjoint_windows`);
    a reference raster on any grid is read through :func:`core.raster.aligned` (nearest
    neighbour) so that its windows match; a callable reference is asked for each window.

    Args:
        pred_path: single-band classified raster (its nodata is ignored).
        reference: reference raster path (nodata ignored), or ``f(window, grid) -> (H, W)`` array.
        ignore: values ignored on either side in addition to each raster's nodata.
        window_size: window edge in pixels; memory is a few arrays of ``window_size**2`` int64.
        feedback: progress and cancel.

    Returns:
        The pair counter; ``.matrix(classes)`` gives the confusion matrix.

    Raises:
        NoOverlapError: the reference raster does not overlap the classification.
        CanceledError: canceled through ``feedback``.
    """
    fb = ensure_feedback(feedback)
    counts = PairCounts()
    grid = RasterGrid.from_path(pred_path)
    windows = disjoint_windows(grid.width, grid.height, window_size)
    ignore_arr = np.asarray(list(ignore), dtype=np.float64)
    with rasterio.open(pred_path) as pds:
        ref_ctx = aligned(reference, grid, Resampling.nearest) if not callable(reference) else None
        rds = ref_ctx.__enter__() if ref_ctx is not None else None
        try:
            for i, win in enumerate(windows):
                check_canceled(fb)
                pred, ok = _read_band(pds, win)
                if rds is not None:
                    ref, rok = _read_band(rds, win)
                    ok &= rok
                else:
                    ref = np.asarray(reference(win, grid))
                if ignore_arr.size:
                    ok &= ~np.isin(pred, ignore_arr) & ~np.isin(ref, ignore_arr)
                counts.add(ref[ok], pred[ok])
                fb.set_progress(100.0 * (i + 1) / len(windows))
        finally:
            if ref_ctx is not None:
                ref_ctx.__exit__(None, None, None)
    return counts


# -------------------------------------------------------------------------------- scores
def _div(a: float, b: float) -> float | None:
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
        olofsson: area-weighted estimates (:func:`olofsson_estimates`) when the reference is a
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
            for v, n, p, r, f, j, s, q in zip(self.class_values, self.class_names, self.precision, self.recall,
                                              self.f1, self.iou, self.support, self.predicted)
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


def accuracy_scores(cm: np.ndarray, class_values: Sequence[int], class_names: Sequence[str] | None = None,
                    unknown_reference: dict[int, int] | None = None) -> AccuracyReport:
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
    precision = [_div(tp[i], cols[i]) for i in range(k)]
    recall = [_div(tp[i], rows[i]) for i in range(k)]
    f1 = [_div(2 * tp[i], 2 * tp[i] + fp[i] + fn[i]) for i in range(k)]
    iou = [_div(tp[i], tp[i] + fp[i] + fn[i]) for i in range(k)]
    return AccuracyReport(
        class_values=[int(v) for v in class_values], class_names=names, matrix=cm, total=total,
        overall_accuracy=_div(int(tp.sum()), total), kappa=cohen_kappa(cm), precision=precision,
        recall=recall, f1=f1, iou=iou, support=[int(x) for x in rows], predicted=[int(x) for x in cols],
        mean_iou=_mean(iou), macro_f1=_mean(f1), unknown_reference=dict(unknown_reference or {}),
    )


def binary_scores(cm: np.ndarray, positive: int = 1) -> dict[str, float | None]:
    """Precision, recall and F1 of the class at index ``positive`` of a confusion matrix.

    Used for change detection (``[no change, change]``).
    """
    rep = accuracy_scores(cm, list(range(len(cm))))
    return {"precision": rep.precision[positive], "recall": rep.recall[positive], "f1": rep.f1[positive],
            "overall_accuracy": rep.overall_accuracy, "kappa": rep.kappa}


# ---------------------------------------------------------------- Olofsson et al. (2014)
def olofsson_estimates(cm_sample_counts: np.ndarray, stratum_areas_px: Sequence[float], pixel_area: float = 1.0,
                       z: float = 1.96) -> dict[str, Any]:
    """Stratified (area-weighted) estimators of accuracy and class area with confidence intervals.

    Strata are the **map** (predicted) classes, with mapped areas ``A_m,i``; a stratified random
    sample was drawn in each stratum and labelled. Following Olofsson et al. (2014, Section 5 and
    the worked example of Tables 8-9), with ``n_ij`` the sample counts (map class i, reference class
    j), ``n_i.`` the sample size of stratum i and ``W_i = A_m,i / A`` the stratum weights:

    - p̂_ij = W_i n_ij / n_i.                                       (area-weighted error matrix, eq. 4)
    - Ô = Σ_j p̂_jj; Û_i = p̂_ii / p̂_i.; P̂_j = p̂_jj / p̂_.j            (eqs. 1-3)
    - V̂(Ô) = Σ_i W_i² Û_i (1 - Û_i) / (n_i. - 1)                   (eq. 5)
    - V̂(Û_i) = Û_i (1 - Û_i) / (n_i. - 1)                           (eq. 6)
    - V̂(P̂_j) = N̂_.j⁻² [N_j.² (1 - P̂_j)² Û_j (1 - Û_j) / (n_j. - 1)
      + P̂_j² Σ_{i≠j} N_i.² (n_ij / n_i.)(1 - n_ij / n_i.) / (n_i. - 1)], N̂_.j = Σ_i N_i. n_ij / n_i. (eq. 7)
    - p̂_.k = Σ_i W_i n_ik / n_i.; Â_k = A p̂_.k                        (eqs. 8-9)
    - S(p̂_.k) = sqrt(Σ_i W_i² (n_ik / n_i.)(1 - n_ik / n_i.) / (n_i. - 1)); S(Â_k) = A S(p̂_.k)  (eqs. 10-11)
    - confidence interval: estimate ± z S (z = 1.96 for 95 %).

    (Equation numbers as in the paper's Section 5; the worked example of the paper is reproduced in
    ``tests/test_metrics.py``.)

    Args:
        cm_sample_counts: ``(K, K)`` sample counts in **this project's orientation**: rows =
            reference, columns = predicted/map class (the paper's matrix transposed).
        stratum_areas_px: mapped area of each map class (stratum), in pixels (or any unit).
        pixel_area: area of one unit of ``stratum_areas_px`` in the unit wanted for the area
            estimates (e.g. m² or ha per pixel).
        z: normal quantile of the confidence interval.

    Returns:
        dict with ``error_matrix`` ((K, K) area proportions, rows reference, columns map),
        ``overall_accuracy``/``overall_accuracy_ci``, per-class lists ``users_accuracy``,
        ``users_accuracy_ci``, ``producers_accuracy``, ``producers_accuracy_ci``, ``area_proportion``,
        ``area``, ``area_ci``, ``area_se``, ``mapped_area`` (None where undefined, e.g. a stratum with
        fewer than 2 samples has no variance) and ``warnings`` (strata with mapped area but < 2 samples).

    Raises:
        InputError: shapes disagree, a negative count/area, or zero total area.
    """
    n = np.asarray(cm_sample_counts, dtype=np.float64).T  # paper orientation: rows map i, cols ref j
    k = n.shape[0]
    areas = np.asarray(stratum_areas_px, dtype=np.float64)
    if n.shape != (k, k) or areas.shape != (k,):
        raise InputError(f"Olofsson estimates need a square (K, K) matrix and K areas; got {n.shape} and {areas.shape}.")
    if (n < 0).any() or (areas < 0).any() or areas.sum() <= 0:
        raise InputError("Sample counts and stratum areas must be non-negative, with a positive total area.")
    total_area = float(areas.sum())
    w = areas / total_area
    ni = n.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(ni[:, None] > 0, n / np.where(ni > 0, ni, 1)[:, None], 0.0)  # n_ij / n_i.
    p = w[:, None] * frac
    var_den = np.where(ni > 1, ni - 1, np.nan)  # strata with < 2 samples give no variance

    def _f(x: float) -> float | None:
        return None if x is None or not np.isfinite(x) else float(x)

    oa = float(np.trace(p))
    ua = [_div(p[i, i], p[i].sum()) for i in range(k)]
    pa = [_div(p[j, j], p[:, j].sum()) for j in range(k)]
    ua_arr = np.array([u if u is not None else np.nan for u in ua])
    # eq. 5: strata with no sample do not contribute (their W_i must then be 0 for an unbiased estimate)
    v_oa_terms = w**2 * ua_arr * (1 - ua_arr) / var_den
    v_oa = float(np.nansum(v_oa_terms)) if np.isfinite(v_oa_terms[ni > 0]).all() else np.nan
    ua_se = [_f(math.sqrt(u * (1 - u) / var_den[i])) if u is not None and ni[i] > 1 else None
             for i, u in enumerate(ua)]
    big_n = areas  # N_i. : stratum sizes in pixels
    pa_se: list[float | None] = []
    for j in range(k):
        n_hat = float(np.sum(big_n * frac[:, j]))
        if pa[j] is None or n_hat == 0 or ua[j] is None or ni[j] <= 1:
            pa_se.append(None)
            continue
        pj, uj = pa[j], ua[j]
        term1 = big_n[j] ** 2 * (1 - pj) ** 2 * uj * (1 - uj) / (ni[j] - 1)
        others = [i for i in range(k) if i != j and ni[i] > 0]
        if any(ni[i] <= 1 for i in others):
            pa_se.append(None)
            continue
        term2 = pj**2 * sum(big_n[i] ** 2 * frac[i, j] * (1 - frac[i, j]) / (ni[i] - 1) for i in others)
        pa_se.append(math.sqrt((term1 + term2) / n_hat**2))
    prop = p.sum(axis=0)  # p̂_.k
    prop_var = np.nansum(w[:, None] ** 2 * frac * (1 - frac) / var_den[:, None], axis=0)
    prop_se = np.sqrt(prop_var)
    a_units = total_area * pixel_area

    def ci(se: float | None) -> float | None:
        return None if se is None else z * se

    return {
        "error_matrix": p.T.tolist(),
        "weights": w.tolist(),
        "sample_counts_per_stratum": ni.astype(int).tolist(),
        "overall_accuracy": oa,
        "overall_accuracy_se": _f(math.sqrt(v_oa)) if np.isfinite(v_oa) else None,
        "overall_accuracy_ci": _f(z * math.sqrt(v_oa)) if np.isfinite(v_oa) else None,
        "users_accuracy": ua,
        "users_accuracy_se": ua_se,
        "users_accuracy_ci": [ci(s) for s in ua_se],
        "producers_accuracy": pa,
        "producers_accuracy_se": pa_se,
        "producers_accuracy_ci": [ci(s) for s in pa_se],
        "area_proportion": prop.tolist(),
        "area": (prop * a_units).tolist(),
        "area_se": (prop_se * a_units).tolist(),
        "area_ci": (z * prop_se * a_units).tolist(),
        "mapped_area": (areas * pixel_area).tolist(),
        "z": z,
        "warnings": [f"stratum {i} (matrix position) has mapped area but {int(ni[i])} sample(s): its estimates are "
                     "undefined or biased; sample at least 2 points (Olofsson et al. recommend 50-100) per map class"
                     for i in range(k) if areas[i] > 0 and ni[i] < 2],
    }
