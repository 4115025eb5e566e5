"""core.training.steps: the batch set-up shared by training, evaluation and the LR range test; OOM retries."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from deeplandcover.core.errors import InputError
from deeplandcover.core.feedback import NullFeedback
from deeplandcover.core.training.config import TrainConfig
from deeplandcover.core.training.distributed import DistContext
from deeplandcover.core.training.steps import (
    Optimisation,
    StepSetup,
    evaluate,
    halved_batch,
    lr_range_test,
    make_scheduler,
    train_epoch,
)

CPU = torch.device("cpu")


def _data(n: int = 8) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, 8, 8, generator=g)
    y = (x[:, 0] > 0).long()
    y[:, 0, 0] = 255  # ignored pixels
    return DataLoader(TensorDataset(x, y), batch_size=4)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Conv2d(2, 2, 1)


SETUP = StepSetup(torch.nn.CrossEntropyLoss(ignore_index=255), CPU)


def test_evaluate_counts_every_labelled_pixel_once() -> None:
    loss, cm = evaluate(_model(), _data(), SETUP, 2)
    assert cm.shape == (2, 2) and cm.dtype == np.int64 and cm.sum() == 8 * 64 - 8  # the ignored pixels left out
    assert loss > 0 and evaluate(_model(), _data(), dataclasses.replace(SETUP, amp=False), 2)[1].sum() == cm.sum()


def test_train_epoch_lowers_the_loss_and_steps_the_optimiser() -> None:
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    optim = Optimisation(opt, make_scheduler(opt, TrainConfig(), "max"), torch.amp.GradScaler("cpu", enabled=False))
    before = evaluate(model, _data(), SETUP, 2)[0]
    losses = [train_epoch(model, _data(), SETUP, optim, NullFeedback(), epoch) for epoch in range(1, 6)]
    assert losses[-1] < losses[0] and evaluate(model, _data(), SETUP, 2)[0] < before


def test_lr_range_test_restores_the_weights_and_stays_in_range() -> None:
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lr = lr_range_test(model, _data(), SETUP, steps=10, lr_bounds=(1e-5, 1.0))
    assert 1e-5 <= lr <= 1e-2
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_an_out_of_memory_retry_halves_the_batch_until_one() -> None:
    err = RuntimeError("CUDA out of memory")
    assert halved_batch(8, DistContext(), CPU, err) == 4
    with pytest.raises(InputError, match="batch size 1"):
        halved_batch(1, DistContext(), CPU, err)
    with pytest.raises(InputError, match="Rank 1 ran out of GPU memory"):
        halved_batch(8, DistContext(rank=1, world_size=2, backend="gloo"), CPU, err)
