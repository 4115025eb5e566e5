"""Area estimates and their confidence intervals from a confusion matrix of sample counts (Olofsson et al. 2014)."""

from __future__ import annotations

import numpy as np
import pytest

from deeplandcover.core.assessment.area_estimates import olofsson_estimates
from deeplandcover.core.errors import InputError

# Olofsson et al. (2014), Section 5 worked example: Table 8 sample counts (rows map class, columns
# reference), strata = mapped areas in 30 m pixels (0.09 ha). The expected values are the rounded
# figures printed in the paper (Tables 9-10 and text): they agree with an independent third-party
# implementation's tests (boothmanrylan/accuracyAssessmentTools, tests/test_olofsson.py) and with the
# hand computation below.
PAPER_COUNTS_MAP_ROWS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])


PAPER_AREAS_PX = [200_000, 150_000, 3_200_000, 6_450_000]


def test_olofsson_worked_example():
    est = olofsson_estimates(PAPER_COUNTS_MAP_ROWS.T, PAPER_AREAS_PX, pixel_area=0.09)
    table9 = np.array(
        [
            [0.0176, 0, 0.0013, 0.0011],
            [0, 0.0110, 0.0016, 0.0024],
            [0.0019, 0, 0.2967, 0.0213],
            [0.0040, 0.0020, 0.0179, 0.6212],
        ]
    )  # rows map
    np.testing.assert_allclose(np.array(est["error_matrix"]).T, table9, atol=5e-5)
    assert round(est["overall_accuracy"], 2) == 0.95 and round(est["overall_accuracy_ci"], 2) == 0.02
    np.testing.assert_allclose(est["users_accuracy"], [0.88, 0.73, 0.93, 0.96], atol=0.005)
    np.testing.assert_allclose(est["users_accuracy_ci"], [0.07, 0.10, 0.04, 0.02], atol=0.005)
    np.testing.assert_allclose(est["producers_accuracy"], [0.75, 0.85, 0.93, 0.96], atol=0.005)
    assert est["producers_accuracy_ci"][0] == pytest.approx(0.21, abs=0.005)
    assert est["producers_accuracy_ci"][2] == pytest.approx(0.03, abs=0.005)
    np.testing.assert_allclose(est["area"], [21_158, 11_686, 285_770, 581_386], atol=1)
    np.testing.assert_allclose(est["area_ci"], [6_158, 3_756, 15_510, 16_282], atol=1)


def test_olofsson_hand_computation_3x3():
    # map rows: stratum A (W=.5, n=10), B (W=.3, n=10), C (W=.2, n=5)
    n = np.array([[8, 1, 1], [2, 7, 1], [0, 1, 4]], dtype=float)
    areas = [500, 300, 200]
    est = olofsson_estimates(n.T, areas)
    w = np.array([0.5, 0.3, 0.2])
    ni = n.sum(1)
    p = w[:, None] * n / ni[:, None]
    assert est["overall_accuracy"] == pytest.approx(0.5 * 0.8 + 0.3 * 0.7 + 0.2 * 0.8)
    assert est["users_accuracy"][1] == pytest.approx(0.7)
    # producer's accuracy of class A: p_AA / p_.A = .4 / (.4 + .3*.2 + 0)
    assert est["producers_accuracy"][0] == pytest.approx(0.4 / 0.46)
    v_oa = sum(w[i] ** 2 * (n[i, i] / ni[i]) * (1 - n[i, i] / ni[i]) / (ni[i] - 1) for i in range(3))
    assert est["overall_accuracy_se"] == pytest.approx(np.sqrt(v_oa))
    # area of class B (proportion) and its SE
    pb = p[:, 1].sum()
    sb = np.sqrt(sum(w[i] ** 2 * (n[i, 1] / ni[i]) * (1 - n[i, 1] / ni[i]) / (ni[i] - 1) for i in range(3)))
    assert est["area"][1] == pytest.approx(1000 * pb) and est["area_se"][1] == pytest.approx(1000 * sb)
    # producer's accuracy variance of class A written out term by term
    N = np.array(areas, float)
    n_hat = sum(N[i] * n[i, 0] / ni[i] for i in range(3))
    P, U = est["producers_accuracy"][0], 0.8
    t1 = N[0] ** 2 * (1 - P) ** 2 * U * (1 - U) / (ni[0] - 1)
    t2 = P**2 * sum(N[i] ** 2 * (n[i, 0] / ni[i]) * (1 - n[i, 0] / ni[i]) / (ni[i] - 1) for i in (1, 2))
    assert est["producers_accuracy_se"][0] == pytest.approx(np.sqrt((t1 + t2) / n_hat**2))


def test_olofsson_bad_input():
    with pytest.raises(InputError):
        olofsson_estimates(np.ones((2, 2)), [1, 2, 3])
