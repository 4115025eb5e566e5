"""core.training.finish and the card's training record (core.training.onnx_export.with_training)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from deeplandcover.core.chips.folder import load_chip_folder
from deeplandcover.core.classes import ClassInfo
from deeplandcover.core.feedback import NullFeedback
from deeplandcover.core.modelcard import ModelCard
from deeplandcover.core.training.checkpoint import Progress
from deeplandcover.core.training.config import TrainConfig
from deeplandcover.core.training.data import ChipDataset
from deeplandcover.core.training.distributed import DistContext
from deeplandcover.core.training.finish import change_threshold, training_record
from deeplandcover.core.training.folders import TrainingSet
from deeplandcover.core.training.onnx_export import with_training
from deeplandcover.core.training.steps import StepSetup, validation_metrics
from deeplandcover.core.training.threads import ThreadPolicy

from ..helpers.chips import make_chip_folder


def _card(**training) -> ModelCard:
    card = ModelCard("unet", ["B1"], [0.0], [1.0], [ClassInfo(1, "a"), ClassInfo(2, "b")], training=training)
    return card


def test_the_training_record_comes_first_and_the_export_notes_of_the_card_follow() -> None:
    card = _card(preprocessing={"cleaning": "x"}, sensor_bands={"s2": ["B1"]})
    done = with_training(card, {"best_epoch": 3, "sensor_bands": {"mine": []}})
    assert list(done.training) == ["best_epoch", "sensor_bands", "preprocessing"]
    assert done.training["sensor_bands"] == {"mine": []}  # the record's own value wins
    assert card.training == {"preprocessing": {"cleaning": "x"}, "sensor_bands": {"s2": ["B1"]}}  # not changed
    assert (done.bands, done.classes, done.arch_params) == (card.bands, card.classes, card.arch_params)


def test_training_record_of_a_finished_run(tmp_path) -> None:
    make_chip_folder(tmp_path / "chips", "single", grid=(2, 2), tile=8, bands=3)
    m = load_chip_folder(tmp_path / "chips")
    val = DataLoader(ChipDataset(tmp_path / "chips", m, [0, 1]), batch_size=2)
    cm = np.array([[30, 2], [5, 40]])
    metrics = validation_metrics(cm, 0.25, list(m.classes)[:2])
    history = [{"epoch": 1, "seconds": 2.0, "chips_per_s": 10.0, "threads": 2}]
    progress = Progress(lr=1e-3, batch_size=2, epoch=1, best_epoch=1, best_score=0.5, history=history)
    threads = ThreadPolicy(2, 2, measure=False)
    rec = training_record(TrainConfig(epochs=7), progress, metrics, val, DistContext(), threads)
    assert rec["chip_folders"] == [str(tmp_path / "chips")] and rec["val_chips"] == 2 and rec["val_pixels"] == 77
    assert (rec["best_epoch"], rec["epochs_run"], rec["lr"], rec["world_size"]) == (1, 1, 1e-3, 1)
    assert rec["config"]["epochs"] == 7 and rec["val_metrics"]["val_loss"] == 0.25
    assert rec["speed"]["seconds_per_epoch"] == 2.0 and rec["speed"]["threads"] == [2]


def test_only_a_two_class_change_model_gets_a_threshold(tmp_path) -> None:
    make_chip_folder(tmp_path / "chips", "single", grid=(2, 2), tile=8, bands=3)
    m = load_chip_folder(tmp_path / "chips")
    data = TrainingSet(m, list(m.classes), [], None, None)
    model = torch.nn.Conv2d(3, len(m.classes), 1)
    setup = StepSetup(torch.nn.CrossEntropyLoss(), torch.device("cpu"))
    same, threshold = change_threshold(model, None, setup, data, NullFeedback())
    assert same is model and threshold is None  # single-date chips: nothing to tune, the loader is not read
