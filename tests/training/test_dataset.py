"""Chip datasets (single, pair, sequence), label mapping, nodata, augmentation and the block split."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import rasterio
import torch

from deeplandcover.core.errors import InputError
from deeplandcover.core.preprocessing.dihedral import dihedral
from deeplandcover.core.preprocessing.normalize import normalize
from deeplandcover.core.training.data import ChipDataset, class_lut
from deeplandcover.core.training.split import split_by_block

from ..helpers.chips import make_chip_folder


def test_single_items_normalised_and_masked(tmp_path):
    m = make_chip_folder(tmp_path, "single", grid=(2, 2), tile=16, class_values=(3, 7))
    ds = ChipDataset(tmp_path, m)
    x, y = ds[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    with rasterio.open(tmp_path / m.chips[0].image) as src:
        raw = src.read()
    expected = normalize(raw, [b.mean for b in m.band_stats], [b.std for b in m.band_stats])
    valid = ~(raw == -1).all(0)
    np.testing.assert_allclose(x.numpy()[:, valid], expected[:, valid], rtol=1e-6)
    assert (x.numpy()[:, ~valid] == 0).all()  # nodata corner -> 0 in the image
    assert (y.numpy()[~valid] == 255).all()  # ... and ignored in the target
    assert set(np.unique(y.numpy())) <= {0, 1, 255}  # values 3, 7 -> indices 0, 1


def test_unknown_values_ignored():
    lut = class_lut([1, 4])
    assert lut[1] == 0 and lut[4] == 1 and lut[2] == 255 and lut[255] == 255


def test_pair_and_sequence_shapes(tmp_path):
    mp = make_chip_folder(tmp_path / "p", "pair", grid=(2, 2), tile=8, bands=2)
    x, _ = ChipDataset(tmp_path / "p", mp)[1]
    assert x.shape == (4, 8, 8)
    ms = make_chip_folder(tmp_path / "s", "sequence", grid=(2, 2), tile=8, bands=2, time_steps=4)
    ds = ChipDataset(tmp_path / "s", ms)
    x, y = ds[0]
    assert x.shape == (4, 2, 8, 8) and y.shape == (8, 8)
    with rasterio.open(tmp_path / "s" / ms.chips[0].image) as src:
        raw = src.read()
    # time-major: band t*C + c is band c of date t
    st = ms.band_stats
    np.testing.assert_allclose(x[2, 1, 7, 7].item(), (raw[2 * 2 + 1, 7, 7] - st[1].mean) / st[1].std, rtol=1e-5)


def test_edge_chip_padded(tmp_path):
    m = make_chip_folder(tmp_path, "single", grid=(2, 2), tile=8)
    m = dataclasses.replace(m, tile_size=10)
    x, y = ChipDataset(tmp_path, m)[0]
    assert x.shape == (3, 10, 10) and (y[8:] == 255).all() and (x[:, :, 8:] == 0).all()


def test_dihedral_all_eight_distinct():
    a = np.arange(9).reshape(1, 3, 3)
    outs = {dihedral([a], k)[0].tobytes() for k in range(8)}
    assert len(outs) == 8


def test_augment_keeps_image_label_aligned(tmp_path):
    m = make_chip_folder(tmp_path, "single", grid=(1, 2), tile=16, nodata=None)
    ds = ChipDataset(tmp_path, m, augment=True)
    base_x, base_y = ds.load(0)
    torch.manual_seed(3)
    for _ in range(6):
        x, y = ds[0]
        found = [k for k in range(8) if np.array_equal(dihedral([base_y], k)[0], y.numpy())]
        assert any(np.allclose(dihedral([base_x], k)[0], x.numpy()) for k in found)


def test_split_whole_blocks_holdout_and_no_leakage(tmp_path):
    # stride 8 < tile 16: neighbouring chips overlap
    m = make_chip_folder(tmp_path, "single", grid=(6, 6), tile=16, stride=8, block=1)
    m.chips[0].block = "holdout"
    train, val = split_by_block(m, 0.2, seed=1)
    assert 0 in val and not set(train) & set(val)
    val_blocks = {m.chips[i].block for i in val}
    assert not {m.chips[i].block for i in train} & val_blocks  # whole blocks
    for i in train:  # no training chip overlaps a validation chip
        ci = m.chips[i].window
        for j in val:
            cj = m.chips[j].window
            assert ci[0] + ci[2] <= cj[0] or cj[0] + cj[2] <= ci[0] or ci[1] + ci[3] <= cj[1] or cj[1] + cj[3] <= ci[1]
    assert split_by_block(m, 0.2, seed=1) == (train, val)  # reproducible


def test_split_errors(tmp_path):
    m = make_chip_folder(tmp_path, "single", grid=(2, 2), tile=8, block=4)  # one block
    with pytest.raises(InputError, match="one spatial block"):
        split_by_block(m, 0.2)
    with pytest.raises(InputError, match="between 0 and 1"):
        split_by_block(m, 1.5)
    with pytest.raises(InputError, match="at least 2"):
        split_by_block(dataclasses.replace(m, chips=m.chips[:1]), 0.2)


def test_class_counts_from_manifest_and_labels(tmp_path):
    m = make_chip_folder(tmp_path, "single", grid=(2, 2), tile=8)
    a = ChipDataset(tmp_path, m).class_counts(3)
    for c in m.chips:
        c.class_counts = {}
    b = ChipDataset(tmp_path, m).class_counts(3)
    # labels read from files also exclude nodata pixels; manifest counts do not know about them
    assert a.sum() >= b.sum() > 0 and (a >= b).all()
