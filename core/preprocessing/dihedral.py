"""The 8 dihedral transforms of a square (flips and quarter turns), for augmentation and test-time augmentation.

One definition of the index ``k`` (0..7), used by training augmentation (:mod:`core.training.data`) and by
test-time augmentation at inference (:mod:`core.inference.engine`): transform ``k`` first flips left-right
(the last axis reversed) when ``k >= 4``, then turns ``k % 4`` quarter turns counter-clockwise
(:func:`numpy.rot90` on the last two axes). ``k = 0`` is the identity; ``0..3`` are the rotations,
``4..7`` the reflections.
"""

from __future__ import annotations

import numpy as np

#: Number of dihedral transforms of a square.
N_TRANSFORMS = 8


def dihedral(x: np.ndarray, k: int, inverse: bool = False) -> np.ndarray:
    """Transform ``k`` (see the module docstring) of the last two axes of ``x``, or its inverse.

    Args:
        x: array ``(..., H, W)`` of any dtype (a list is converted to an array); H = W for ``k % 4`` odd
            when the result must keep the shape.
        k: 0..7.
        inverse: undo transform ``k`` instead: ``dihedral(dihedral(x, k), k, inverse=True)`` equals ``x``.

    Returns:
        A view of ``x`` (negative strides): :func:`numpy.ascontiguousarray` it before handing it to torch or
        ONNX Runtime.

    Raises:
        ValueError: ``k`` outside 0..7.
    """
    if not 0 <= k < N_TRANSFORMS:
        raise ValueError(f"Dihedral transform index must be 0..7, got {k}.")
    x = np.asarray(x)
    if not inverse:
        x = x[..., ::-1] if k >= 4 else x
        return np.rot90(x, k % 4, axes=(-2, -1))
    x = np.rot90(x, -(k % 4), axes=(-2, -1))
    return x[..., ::-1] if k >= 4 else x
