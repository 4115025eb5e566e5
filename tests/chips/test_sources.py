"""Tests of core.chips.sources: band lists and the dates of a series read from file names."""

from __future__ import annotations

import numpy as np
import pytest

from deeplandcover.core.chips.sources import parse_bands
from deeplandcover.core.chips.stats import BandAccumulator
from deeplandcover.core.errors import InputError
from deeplandcover.core.preprocessing.timeseries import parse_date


def test_helpers():
    assert parse_date("s2l1c_2015-07-11.tif") == "2015-07-11"
    assert parse_date("T33UUU_20170216T102101_B02.jp2") == "2017-02-16"
    assert parse_date("scene_12345.tif") is None
    assert parse_bands("2, 3,4;8") == [2, 3, 4, 8] and parse_bands("") is None
    with pytest.raises(InputError):
        parse_bands("0,1")
    rng = np.random.default_rng(0)
    x = rng.normal(1000, 50, (3, 5000))
    acc = BandAccumulator(3)
    for part in np.array_split(x, 7, axis=1):
        acc.update(part)
    st = acc.result(["a", "b", "c"])
    assert st[1].mean == pytest.approx(x[1].mean()) and st[1].std == pytest.approx(x[1].std())
