"""core.training.threshold: the change-F1-optimal threshold, chosen on validation and built into the logits."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deeplandcover.core.training.threshold import (  # noqa: E402
    LogitOffset,
    calibrate,
    choose_threshold,
    logit_histograms,
)


class _Fixed(torch.nn.Module):
    """Logits ``[0, d]`` per pixel, with ``d`` the input's one channel (a model whose scores we choose)."""

    def forward(self, x):
        return torch.cat([torch.zeros_like(x), x], dim=1)


def _loader(d: np.ndarray, y: np.ndarray):
    x = torch.from_numpy(d.astype(np.float32)).reshape(1, 1, 1, -1)
    t = torch.from_numpy(y.astype(np.int64)).reshape(1, 1, -1)
    return [(x, t)]


def test_threshold_maximises_change_f1_and_beats_argmax():
    rng = np.random.default_rng(0)
    # 2 % change; the model's scores are shifted up (class weights): argmax calls too much change
    neg = rng.normal(-1.0, 1.5, 9800)
    pos = rng.normal(4.0, 1.5, 200)
    d, y = np.concatenate([neg, pos]), np.r_[np.zeros(9800), np.ones(200)]
    model, thr = calibrate(_Fixed(), _loader(d, y), torch.device("cpu"))
    assert thr is not None and thr.probability > 0.5 and thr.f1 > thr.f1_argmax + 0.05
    # brute force over the sample itself: the histogram's choice is within a bin of the best
    best = max((2 * ((d > e) & (y == 1)).sum() / ((d > e).sum() + 200), e) for e in np.linspace(-5, 8, 1301))
    assert thr.f1 == pytest.approx(best[0], abs=0.01)
    # the wrapped model's argmax is the thresholded decision; the raw logits are unchanged inside
    x = torch.from_numpy(d.astype(np.float32)).reshape(1, 1, 1, -1)
    with torch.no_grad():
        pred = model(x).argmax(1).numpy().ravel()
    edge = math.log(thr.probability / (1 - thr.probability))
    np.testing.assert_array_equal(pred, (d > edge + 1e-5).astype(int))
    assert isinstance(model, LogitOffset) and thr.to_dict()["val_pixels"] == 10000


def test_no_change_pixels_or_argmax_already_best():
    assert choose_threshold(np.zeros(642, np.int64), np.ones(642, np.int64)) is None
    d = np.r_[np.full(50, -3.0), np.full(50, 3.0)]  # perfectly separated around 0: argmax is best
    y = np.r_[np.zeros(50), np.ones(50)]
    fixed = _Fixed()
    model, thr = calibrate(fixed, _loader(d, y), torch.device("cpu"))
    assert thr.f1 == thr.f1_argmax == 1.0
    assert thr.probability == 0.5 and model is fixed  # nothing to build in


def test_ignored_pixels_are_not_counted():
    d = np.array([5.0, -5.0, 9.0])
    y = np.array([1, 0, 255])
    pos, neg = logit_histograms(_Fixed(), _loader(d, y), torch.device("cpu"))
    assert pos.sum() == 1 and neg.sum() == 1


def test_logit_offset_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from ..helpers.onnx_models import export_onnx

    net = torch.nn.Conv2d(3, 2, 1)
    wrapped = LogitOffset(net, torch.tensor([0.0, -1.5])).eval()
    path = export_onnx(wrapped, tmp_path / "m.onnx", (3, 8, 8))
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        want = (net(torch.from_numpy(x)) + torch.tensor([0.0, -1.5]).reshape(1, 2, 1, 1)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
