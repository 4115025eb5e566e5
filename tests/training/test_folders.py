"""Several chip folders as one training set: cross-checks, merged manifest, datasets, model dates."""

from __future__ import annotations

import dataclasses

import pytest

from deeplandcover.core.errors import BandMismatchError, ChipFolderError, InputError
from deeplandcover.core.training.config import TrainConfig
from deeplandcover.core.training.folders import build_datasets, load_folders, model_dates

from ..helpers.chips import make_chip_folder


def test_two_folders_merge_into_one_manifest_and_split_into_datasets(tmp_path) -> None:
    a = make_chip_folder(tmp_path / "a", grid=(2, 4), tile=8, block=1, seed=1)
    b = make_chip_folder(tmp_path / "b", grid=(4, 2), tile=8, block=1, seed=2)
    loaded, merged = load_folders([tmp_path / "a", tmp_path / "b"], "unet")
    assert [f for f, _ in loaded] == [tmp_path / "a", tmp_path / "b"]
    assert len(merged.chips) == len(a.chips) + len(b.chips) == 16
    assert merged.class_values == [1, 2, 3] and len(merged.band_stats) == 3
    train, val = build_datasets(loaded, merged, TrainConfig(val_fraction=0.25, seed=0))
    assert len(train) + len(val) == 16 and len(val) >= 2  # each folder gives validation chips
    x, y = train[0]
    assert tuple(x.shape) == (3, 8, 8) and tuple(y.shape) == (8, 8)


def test_folders_that_differ_or_do_not_fit_the_architecture_are_refused(tmp_path) -> None:
    make_chip_folder(tmp_path / "single", grid=(2, 2), tile=8)
    make_chip_folder(tmp_path / "four", grid=(2, 2), tile=8, bands=4)
    make_chip_folder(tmp_path / "seq", "sequence", grid=(2, 2), tile=8)
    with pytest.raises(ChipFolderError, match="No chip folder"):
        load_folders([], "unet")
    with pytest.raises(BandMismatchError, match="4 bands but .* has 3"):
        load_folders([tmp_path / "single", tmp_path / "four"], "unet")
    with pytest.raises(ChipFolderError, match="sequence chips but .* single chips"):
        load_folders([tmp_path / "single", tmp_path / "seq"], "unet")
    with pytest.raises(InputError, match="unet_convlstm does not fit single chips"):
        load_folders([tmp_path / "single"], "unet_convlstm")
    with pytest.raises(InputError, match="two-date chips"):
        load_folders([tmp_path / "single"], "fc_siam_diff")
    with pytest.raises(InputError, match="multi-sensor"):
        load_folders([tmp_path / "single"], "two_branch_unet")


def test_model_dates_are_the_fixed_subset_of_a_sequence(tmp_path) -> None:
    make_chip_folder(tmp_path / "seq", "sequence", grid=(2, 2), tile=8, time_steps=5)
    _, merged = load_folders([tmp_path / "seq"], "unet_convlstm")
    merged = dataclasses.replace(merged, time_steps=["d0", "d1", "d2", "d3", "d4"])
    assert model_dates(merged, TrainConfig(sequence_length=3)) == ["d0", "d2", "d4"]
    assert model_dates(merged, TrainConfig(sequence_length=0)) is None  # all dates
    assert model_dates(merged, TrainConfig(sequence_length=5)) is None
