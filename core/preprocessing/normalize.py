"""Nodata masks and per-band normalisation, the same in training and at inference.

Arrays are ``(C, H, W)``; masks ``(H, W)`` bool, True where a pixel is valid. Two kinds of normalisation
(the model card's ``normalization``, :data:`KINDS`): ``"standard"``, ``(x - mean) / std``; and
``"dynamicworld"``, the log/sigmoid squashing of Dynamic World (:func:`dynamicworld`), whose two
per-band parameters travel in the same ``mean`` and ``std`` slots.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ..errors import InputError

#: The normalisation kinds a model card can name (``ModelCard.normalization``).
KINDS = ("standard", "dynamicworld")
Kind = Literal["standard", "dynamicworld"]


def valid_mask(data: np.ndarray, nodata: float | None) -> np.ndarray:
    """Pixels that hold data: not NaN in any band, and not equal to ``nodata`` in every band.

    A pixel is nodata when *all* its bands equal the nodata value (GDAL's per-dataset nodata on
    multiband imagery: a single dark band is a valid measurement), or when any band is NaN.

    Args:
        data: ``(C, H, W)`` array of any dtype.
        nodata: the raster's nodata value, or None.

    Returns:
        ``(H, W)`` bool, True where the pixel holds data.
    """
    mask = np.ones(data.shape[-2:], dtype=bool)
    if np.issubdtype(data.dtype, np.floating):
        mask &= ~np.isnan(data).any(axis=0)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        mask &= ~(data == nodata).all(axis=0)
    return mask


def normalize(
    data: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    valid: np.ndarray | None = None,
    kind: Kind = "standard",
) -> np.ndarray:
    """Per-band normalisation with invalid pixels set to 0 (for ``"standard"``, the band mean).

    Args:
        data: ``(..., C, H, W)`` array of any numeric dtype.
        mean, std: C per-band statistics in the raster's units (from the manifest / model card); for
            ``kind="dynamicworld"`` the two columns of the authors' table (see :func:`dynamicworld`).
        valid: optional ``(..., H, W)`` bool mask; pixels where it is False become 0.
        kind: ``"standard"``: ``(x - mean) / std``; ``"dynamicworld"``: :func:`dynamicworld`.

    Returns:
        ``(..., C, H, W)`` float32.

    Raises:
        InputError: the number of statistics differs from the number of bands, or an unknown ``kind``.
    """
    c = data.shape[-3]
    if len(mean) != c or len(std) != c:
        raise InputError(f"Normalisation has {len(mean)} means / {len(std)} stds for {c} bands.")
    if kind not in KINDS:
        raise InputError(f"Unknown normalisation {kind!r}: the model card must name one of {', '.join(KINDS)}.")
    m = np.asarray(mean, dtype=np.float32).reshape(c, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(c, 1, 1)
    s = np.where(s > 0, s, 1.0).astype(np.float32)
    if kind == "dynamicworld":
        out = dynamicworld(data, m, s)
    else:
        out = data.astype(np.float32)  # one copy, then in place: this runs once per tile and chip
        out -= m
        out /= s
    if valid is not None:
        np.copyto(out, np.float32(0), where=~np.expand_dims(valid, -3))
    if not np.issubdtype(data.dtype, np.integer):  # integers cannot hold NaN or inf
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def dynamicworld(data: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Dynamic World's input normalisation of Sentinel-2 L1C digital numbers (reflectance x 10000).

    ``y = log(0.005 x + 1)``; ``z = (y - p0) / p1``; ``y = exp(5 z - 1)``; ``y / (y + 1)`` (Brown et al.
    2022, Scientific Data 9, 251, doi:10.1038/s41597-022-01307-4; the formula and the 9 x 2 table of
    ``p0``/``p1`` from the README of github.com/google/dynamicworld, :data:`models.dynamicworld.NORM_PARAMS`).
    The last two steps are the logistic function of ``5 z - 1``, computed as ``1 / (1 + exp(1 - 5 z))``,
    which gives the same numbers without overflowing. Values below 0 (not L1C digital
    numbers) are taken as 0. Output in (0, 1).

    Args:
        data: ``(..., C, H, W)`` digital numbers, any numeric dtype.
        p0, p1: ``(C, 1, 1)`` float32 per-band parameters.

    Returns:
        ``(..., C, H, W)`` float32.
    """
    y = np.maximum(data.astype(np.float32), np.float32(0))
    y *= np.float32(0.005)
    np.log1p(y, out=y)
    y -= p0
    y /= p1
    y *= np.float32(-5)
    y += np.float32(1)
    np.exp(y, out=y)  # x >= 0 bounds the exponent by 1 + 5 p0 / p1 (< 6 for the authors' table)
    y += np.float32(1)
    np.reciprocal(y, out=y)
    return y
