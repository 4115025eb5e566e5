"""core.preprocessing.normalize: per-band standardisation and the valid-data mask (nodata, NaN)."""

from __future__ import annotations

import numpy as np
import pytest

import deeplandcover.core.preprocessing.normalize as N  # the package re-exports the function normalize lazily
from deeplandcover.core.errors import InputError


def test_normalize_and_valid_mask():
    data = np.array([[[1, 2], [3, 0]], [[10, 20], [30, 0]]], dtype=np.uint16)
    valid = N.valid_mask(data, nodata=0)
    assert valid.tolist() == [[True, True], [True, False]]
    out = N.normalize(data, [2, 20], [1, 10], valid)
    assert out.dtype == np.float32
    assert out[:, 0, 0].tolist() == [-1.0, -1.0]
    assert out[:, 1, 1].tolist() == [0.0, 0.0]
    with pytest.raises(InputError):
        N.normalize(data, [1], [1])


def test_valid_mask_nan():
    d = np.ones((2, 2, 2), np.float32)
    d[1, 0, 0] = np.nan
    assert N.valid_mask(d, None).tolist() == [[False, True], [True, True]]
