"""core.preprocessing.dihedral: the eight flips and rotations of the square and their inverses."""

from __future__ import annotations

import numpy as np

from deeplandcover.core.preprocessing.dihedral import dihedral


def test_dihedral_round_trip():
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    outs = {dihedral(x, k).tobytes() for k in range(8)}
    assert len(outs) == 8
    for k in range(8):
        assert np.array_equal(dihedral(dihedral(x, k), k, inverse=True), x)
