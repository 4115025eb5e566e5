"""Area-weighted accuracy and area estimates of a stratified random sample, with confidence intervals.

The design-based estimators of Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E.,
& Wulder, M. A. (2014), "Good practices for estimating area and assessing accuracy of land change",
Remote Sensing of Environment 148:42-57, doi:10.1016/j.rse.2014.02.015, for a sample stratified by
map class (:mod:`core.assessment.sampling`). Pure NumPy; the matrix conventions are those of
:mod:`core.assessment.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from .metrics import ratio


def olofsson_estimates(
    cm_sample_counts: np.ndarray, stratum_areas_px: Sequence[float], pixel_area: float = 1.0, z: float = 1.96
) -> dict[str, Any]:
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
    ``tests/assessment/test_metrics.py``.)

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
        raise InputError(
            f"Olofsson estimates need a square (K, K) matrix and K areas; got {n.shape} and {areas.shape}."
        )
    if (n < 0).any() or (areas < 0).any() or areas.sum() <= 0:
        raise InputError("Sample counts and stratum areas must be non-negative, with a positive total area.")
    w = areas / float(areas.sum())
    ni = n.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(ni[:, None] > 0, n / np.where(ni > 0, ni, 1)[:, None], 0.0)  # n_ij / n_i.
    p = w[:, None] * frac
    var_den = np.where(ni > 1, ni - 1, np.nan)  # strata with < 2 samples give no variance
    ua = [ratio(p[i, i], p[i].sum()) for i in range(k)]
    pa = [ratio(p[j, j], p[:, j].sum()) for j in range(k)]
    oa_se = _overall_accuracy_se(w, ua, ni, var_den)
    ua_se = [
        _finite(math.sqrt(u * (1 - u) / var_den[i])) if u is not None and ni[i] > 1 else None for i, u in enumerate(ua)
    ]
    pa_se = _producers_accuracy_se(pa, ua, areas, frac, ni)
    prop = p.sum(axis=0)  # p̂_.k
    prop_se = np.sqrt(np.nansum(w[:, None] ** 2 * frac * (1 - frac) / var_den[:, None], axis=0))
    a_units = float(areas.sum()) * pixel_area
    return {
        "error_matrix": p.T.tolist(),
        "weights": w.tolist(),
        "sample_counts_per_stratum": ni.astype(int).tolist(),
        "overall_accuracy": float(np.trace(p)),
        "overall_accuracy_se": oa_se,
        "overall_accuracy_ci": None if oa_se is None else _finite(z * oa_se),
        "users_accuracy": ua,
        "users_accuracy_se": ua_se,
        "users_accuracy_ci": [None if se is None else z * se for se in ua_se],
        "producers_accuracy": pa,
        "producers_accuracy_se": pa_se,
        "producers_accuracy_ci": [None if se is None else z * se for se in pa_se],
        "area_proportion": prop.tolist(),
        "area": (prop * a_units).tolist(),
        "area_se": (prop_se * a_units).tolist(),
        "area_ci": (z * prop_se * a_units).tolist(),
        "mapped_area": (areas * pixel_area).tolist(),
        "z": z,
        "warnings": [
            f"stratum {i} (matrix position) has mapped area but {int(ni[i])} sample(s): its estimates are "
            "undefined or biased; sample at least 2 points (Olofsson et al. recommend 50-100) per map class"
            for i in range(k)
            if areas[i] > 0 and ni[i] < 2
        ],
    }


def _finite(x: float | None) -> float | None:
    """``x`` as a float, or None when undefined (None, NaN or infinite)."""
    return None if x is None or not np.isfinite(x) else float(x)


def _overall_accuracy_se(w: np.ndarray, ua: list[float | None], ni: np.ndarray, var_den: np.ndarray) -> float | None:
    """S(Ô) of eq. 5, or None when a sampled stratum has no variance (fewer than 2 samples)."""
    ua_arr = np.array([u if u is not None else np.nan for u in ua])
    # strata with no sample do not contribute (their W_i must then be 0 for an unbiased estimate)
    terms = w**2 * ua_arr * (1 - ua_arr) / var_den
    if not np.isfinite(terms[ni > 0]).all():
        return None
    return _finite(math.sqrt(float(np.nansum(terms))))


def _producers_accuracy_se(
    pa: list[float | None], ua: list[float | None], big_n: np.ndarray, frac: np.ndarray, ni: np.ndarray
) -> list[float | None]:
    """S(P̂_j) of eq. 7 for every reference class j; ``big_n`` = N_i., the stratum sizes in pixels."""
    k = len(pa)
    out: list[float | None] = []
    for j in range(k):
        n_hat = float(np.sum(big_n * frac[:, j]))
        others = [i for i in range(k) if i != j and ni[i] > 0]
        if pa[j] is None or n_hat == 0 or ua[j] is None or ni[j] <= 1 or any(ni[i] <= 1 for i in others):
            out.append(None)
            continue
        pj, uj = pa[j], ua[j]
        term1 = big_n[j] ** 2 * (1 - pj) ** 2 * uj * (1 - uj) / (ni[j] - 1)
        term2 = pj**2 * sum(big_n[i] ** 2 * frac[i, j] * (1 - frac[i, j]) / (ni[i] - 1) for i in others)
        out.append(math.sqrt((term1 + term2) / n_hat**2))
    return out
