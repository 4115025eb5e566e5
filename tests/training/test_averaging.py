"""Weight averaging: the EMA of the weights and buffers, checkpoints with both sets, resume."""

from __future__ import annotations

import torch

from deeplandcover.core.training.averaging import WeightAverage, start_average, trained_weights


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))


def test_the_average_follows_each_optimiser_step_by_the_ema_formula() -> None:
    net = _net()
    avg = WeightAverage(net, decay=0.5)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    avg.follow(opt)
    seen = []
    for _ in range(2):
        opt.zero_grad()
        net(torch.randn(4, 2, 5, 5)).sum().backward()
        opt.step()
        seen.append((net[0].weight.detach().clone(), net[1].running_mean.clone()))
    (w1, m1), (w2, m2) = seen
    assert not torch.equal(w1, w2)
    # the first step starts the average (PyTorch's AveragedModel copies), the second one is an EMA step
    torch.testing.assert_close(avg.module[0].weight, 0.5 * w1 + 0.5 * w2)
    # BatchNorm statistics are averaged too (use_buffers)
    torch.testing.assert_close(avg.module[1].running_mean, 0.5 * m1 + 0.5 * m2)


def test_checkpoint_holds_averaged_and_trained_weights() -> None:
    net = _net()
    avg = WeightAverage(net, decay=0.9)
    for _ in range(2):  # the first update starts the average, the second one averages
        with torch.no_grad():
            net[0].weight.add_(1.0)
        avg.update()
    ck = avg.add_to({"epoch": 2})
    assert ck["epoch"] == 2
    assert torch.equal(ck["train_state_dict"]["0.weight"], net[0].weight)
    assert not torch.equal(ck["state_dict"]["0.weight"], net[0].weight)
    assert trained_weights(ck) is ck["train_state_dict"]
    plain = {"state_dict": {"a": 1}}
    assert trained_weights(plain) is plain["state_dict"]


def test_start_average_is_off_at_zero_decay_and_continues_a_resumed_average() -> None:
    net = _net()
    assert start_average(net, 0.0, None) is None
    fresh = start_average(net, 0.99, None)
    assert torch.equal(fresh.module[0].weight, net[0].weight)  # starts as a copy
    saved = {k: v + 1.0 if v.is_floating_point() else v for k, v in net.state_dict().items()}
    resumed = start_average(net, 0.99, {"state_dict": saved, "train_state_dict": net.state_dict()})
    torch.testing.assert_close(resumed.module[0].weight, saved["0.weight"])
    # a checkpoint of a run without averaging holds no average to continue: start from the model
    other = start_average(net, 0.99, {"state_dict": saved})
    assert torch.equal(other.module[0].weight, net[0].weight)
