"""The training command line: arguments map to a TrainConfig."""

from __future__ import annotations

import pytest

from deeplandcover.core.training.cli import build_parser, config_from_args
from deeplandcover.core.training.config import TrainConfig


def test_cli_maps_to_train_config():
    ns = build_parser().parse_args(
        [
            "--chips",
            "a",
            "b",
            "--out",
            "o",
            "--architecture",
            "deeplabv3plus",
            "--epochs",
            "3",
            "--lr",
            "0.01",
            "--no-augment",
            "--class-weights",
            "median",
            "--arch-params",
            '{"dropout": 0.1}',
        ]
    )
    c = config_from_args(ns)
    assert ns.chips == ["a", "b"] and ns.out == "o"
    assert (c.architecture, c.epochs, c.lr, c.augment, c.class_weights) == ("deeplabv3plus", 3, 0.01, False, "median")
    assert c.arch_params == {"dropout": 0.1} and c.resume is None and c.num_threads is None
    assert config_from_args(build_parser().parse_args(["--chips", "a", "--out", "o"])) == TrainConfig()
    assert config_from_args(build_parser().parse_args(["--chips", "a", "--out", "o", "--lr", "0"])).lr is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--chips", "a", "--out", "o", "--loss", "dice"])
