"""Losses and their class weights, with the validation scores they are judged by."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deeplandcover.core.classes import ClassInfo
from deeplandcover.core.training.losses import class_weights, make_loss, soft_jaccard
from deeplandcover.core.training.steps import confusion_counts, validation_metrics


def test_losses_and_scores():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    t = torch.randint(0, 3, (2, 4, 4))
    t[0] = 255
    for name in ("ce", "ce_jaccard", "focal"):
        loss = make_loss(name, torch.tensor([1.0, 2.0, 0.5]))(logits, t)
        assert torch.isfinite(loss) and loss > 0
        loss.backward()
    perfect = torch.nn.functional.one_hot(t.clamp_max(2), 3).permute(0, 3, 1, 2).float() * 50
    assert soft_jaccard(perfect, t) == pytest.approx(1.0, abs=1e-4)
    assert make_loss("ce")(logits, torch.full((2, 4, 4), 255)) == 0  # an all-ignored batch is no NaN
    w = class_weights(np.array([100, 10, 0]), "median")
    assert w[2] == 0 and w[1] > w[0]
    np.testing.assert_allclose(class_weights(np.array([30, 10]), "inverse"), [2 / 3, 2])
    cm = confusion_counts(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 255, 1]), 3).numpy()
    assert cm.sum() == 3 and cm[1, 2] == 1
    s = validation_metrics(cm, 0.0, [ClassInfo(v, f"c{v}") for v in (1, 2, 3)])
    # Compute Accuracy's means: over the classes whose score is defined, so the third class (predicted once,
    # absent from the reference: IoU 0) counts; its recall is undefined (None), not 0
    assert s["oa"] == pytest.approx(2 / 3) and s["miou"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert s["recall_per_class"][2] is None and s["precision_per_class"][2] == 0.0
