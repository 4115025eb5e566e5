"""The pre-trained-encoder schedule: channel names, normalisation from the weights, freeze/unfreeze, learning rates."""

from __future__ import annotations

import dataclasses

import pytest

from deeplandcover.core.feedback import NullFeedback
from deeplandcover.core.training import weights_catalog as wc
from deeplandcover.core.training.config import TrainConfig
from deeplandcover.core.training.encoder_schedule import EncoderSchedule, channel_names
from deeplandcover.models import build_model

from ..helpers.chips import make_chip_folder
from ..helpers.encoder_weights import catalog_entry, weights_file
from ..helpers.feedback import RecordingFeedback


@pytest.fixture
def weights(tmp_path, monkeypatch) -> None:
    (tmp_path / "src").mkdir()
    src, _ = weights_file(tmp_path / "src")
    monkeypatch.setitem(wc.CATALOG, "test_weights", catalog_entry(src))
    monkeypatch.setenv("DLC_WEIGHTS_DIR", str(tmp_path / "cache"))


def _config(**kw) -> TrainConfig:
    return TrainConfig(backbone="resnet18", encoder_weights="test_weights", freeze_epochs=1, **kw)


def test_channel_names_repeat_the_indices_for_each_date_of_a_pair(tmp_path) -> None:
    single = make_chip_folder(tmp_path / "s", grid=(1, 2), tile=8)
    pair = make_chip_folder(tmp_path / "p", "pair", grid=(1, 2), tile=8, bands=2)
    assert channel_names(single, ["NDVI"]) == ["B1", "B2", "B3", "NDVI"]
    assert channel_names(pair, ["NDVI"]) == ["B1", "B2", "NDVI", "B1", "B2", "NDVI"]


def test_prepare_takes_the_weights_normalisation_or_nothing_without_weights(tmp_path, weights) -> None:
    m = make_chip_folder(tmp_path / "c", grid=(1, 2), tile=8)
    m = dataclasses.replace(m, bands=["B04", "B03", "B02"])
    none, same = EncoderSchedule.prepare(TrainConfig(), m, [], NullFeedback())
    assert none is None and same is m
    fb = RecordingFeedback()
    sched, renormed = EncoderSchedule.prepare(_config(), m, [], fb)
    # the chips hold digital numbers (means in the hundreds): the catalogue's mean 0 / std 10000 apply
    assert [(b.mean, b.std) for b in renormed.band_stats] == [(0.0, 10000.0)] * 3
    assert sched.channels == ["B04", "B03", "B02"] and any("Normalisation" in s for s in fb.lines)
    assert sched.info()["freeze_epochs"] == 1 and sched.info()["normalisation"] == sched.norm_note


def test_encoder_is_frozen_then_unfrozen_at_a_lower_learning_rate(tmp_path, weights) -> None:
    m = dataclasses.replace(make_chip_folder(tmp_path / "c", grid=(1, 2), tile=8), bands=["B04", "B03", "B02"])
    sched, _ = EncoderSchedule.prepare(_config(encoder_lr_factor=0.1), m, [], NullFeedback())
    model = build_model("unet", 3, 2, backbone="resnet18")
    sched.load(model, NullFeedback())
    assert sched.report["initialised"] == []
    enc, rest = sched.param_groups(model, 1e-3)
    assert enc["lr"] == pytest.approx(1e-4) and rest["lr"] == 1e-3
    assert len(enc["params"]) + len(rest["params"]) == len(list(model.parameters()))
    assert sched.at_epoch(model, 1, 16, NullFeedback()) is True
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert sched.at_epoch(model, 1, 16, NullFeedback()) is False  # no change
    fb = RecordingFeedback()
    assert sched.at_epoch(model, 2, 16, fb) is True and any("unfrozen" in s for s in fb.lines)
    assert all(p.requires_grad for p in model.encoder.parameters()) and model.encoder.bn1.training
