"""Tests of core.chips.morphology: line dilation and edge erosion of label arrays."""

from __future__ import annotations

import numpy as np

from deeplandcover.core.chips.morphology import dilate_lines, erode_edges
from deeplandcover.core.classes import IGNORE_INDEX


def test_dilate_and_erode_synthetic():
    lines = np.full((11, 11), IGNORE_INDEX, np.uint8)
    lines[5, :] = 3
    d = dilate_lines(lines, 2)
    assert set(np.nonzero(d[:, 5] == 3)[0]) == {3, 4, 5, 6, 7}
    lab = np.full((6, 10), 1, np.uint8)
    lab[:, 5:] = 2
    e = erode_edges(lab, 1)
    assert (e[:, 4:6] == IGNORE_INDEX).all()
    assert (e[:, :4] == 1).all() and (e[:, 6:] == 2).all()  # the array border is not an edge
    speck = np.full((5, 5), 4, np.uint8)
    speck[2, 2] = 7
    assert erode_edges(speck, 1)[2, 2] == IGNORE_INDEX
