"""Weight averaging: an exponential moving average (EMA) of the network's weights, validated and exported.

The averaged weights follow the trained ones step by step (``w_avg <- decay * w_avg + (1 - decay) * w``), over
parameters and BatchNorm buffers alike, so the averaged network needs no extra pass over the data. Averaging
the iterates of stochastic gradient descent goes back to Polyak & Juditsky (1992), "Acceleration of
stochastic approximation by averaging", SIAM Journal on Control and Optimization 30(4):838-855; Izmailov et
al. (2018), "Averaging weights leads to wider optima and better generalization", UAI, show why it generalises
better. The arithmetic is PyTorch's (:class:`torch.optim.swa_utils.AveragedModel` with
:func:`torch.optim.swa_utils.get_ema_multi_avg_fn`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class WeightAverage:
    """The EMA of a model's weights and buffers.

    Args:
        model: the network being trained (not a DDP wrapper); the average starts as a copy of it.
        decay: EMA decay per optimiser step, in (0, 1); the average spans about ``1 / (1 - decay)`` steps.
        state: averaged weights to start from (a ``state_dict`` of ``model``'s layout), e.g. on resume.
    """

    def __init__(self, model: torch.nn.Module, decay: float, state: dict[str, Any] | None = None) -> None:
        self._avg = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        if state is not None:
            self._avg.module.load_state_dict(state)
            self._avg.n_averaged.fill_(1)  # continue the average instead of copying the trained weights
        self._model = model

    @property
    def module(self) -> torch.nn.Module:
        """The network with the averaged weights (validate and export this one)."""
        return self._avg.module

    def update(self) -> None:
        """Fold the trained model's current weights into the average (after each optimiser step)."""
        self._avg.update_parameters(self._model)

    def follow(self, optimizer: torch.optim.Optimizer) -> None:
        """Update the average after every step of ``optimizer``."""
        optimizer.register_step_post_hook(lambda *_: self.update())

    def add_to(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        """``checkpoint`` with the averaged weights as ``state_dict`` (what is validated, exported, fine-tuned
        from) and the trained ones as ``train_state_dict`` (what a resumed run trains on)."""
        return {**checkpoint, "state_dict": self.module.state_dict(), "train_state_dict": self._model.state_dict()}


def trained_weights(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The weights a resumed run trains on: ``train_state_dict`` when the run averaged weights, else ``state_dict``."""
    return checkpoint.get("train_state_dict") or checkpoint["state_dict"]


def start_average(model: torch.nn.Module, decay: float, resumed: dict[str, Any] | None) -> WeightAverage | None:
    """The weight average of ``model`` (None when ``decay`` is 0), continued from a resumed checkpoint's average."""
    if decay <= 0:
        return None
    averaged = resumed["state_dict"] if resumed is not None and resumed.get("train_state_dict") else None
    return WeightAverage(model, decay, averaged)
