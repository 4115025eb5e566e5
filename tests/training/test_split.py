"""The spatial block split: whole blocks, holdout chips, no leakage, stratification, errors."""

from __future__ import annotations

import dataclasses

import pytest

from deeplandcover.core.errors import InputError
from deeplandcover.core.training.split import split_by_block

from ..helpers.chips import make_chip_folder


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


def test_stratified_block_split_same_on_every_rank(tmp_path):
    # every rank computes the split itself: it must be deterministic; stratification may only improve
    # how well the validation class shares match the folder's, and keeps whole blocks
    from deeplandcover.core.training.split import _class_matrix, _mismatch, split_by_block

    m = make_chip_folder(tmp_path, "single", grid=(6, 6), tile=8, block=1, class_values=(1, 2, 3, 4, 5), seed=3)
    counts = _class_matrix(m.chips)
    plain = split_by_block(m, 0.25, seed=0, stratify=1)
    strat = split_by_block(m, 0.25, seed=0)
    assert strat == split_by_block(m, 0.25, seed=0)
    assert _mismatch(set(strat[1]), counts) <= _mismatch(set(plain[1]), counts)
    assert not {m.chips[i].block for i in strat[0]} & {m.chips[i].block for i in strat[1]}
    assert len(strat[1]) >= 0.25 * len(m.chips)
    for c in m.chips[:1]:
        c.class_counts = {}
    assert split_by_block(m, 0.25, seed=0) == split_by_block(m, 0.25, seed=0, stratify=1)  # no counts: plain
