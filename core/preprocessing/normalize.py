"""Nodata masks and per-band normalisation, the same in training and at inference.

Arrays are ``(C, H, W)``; masks ``(H, W)`` bool, True where a pixel is valid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError


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
    data: np.ndarray, mean: Sequence[float], std: Sequence[float], valid: np.ndarray | None = None
) -> np.ndarray:
    """Per-band standardisation ``(x - mean) / std`` with invalid pixels set to 0 (the band mean).

    Args:
        data: ``(..., C, H, W)`` array of any numeric dtype.
        mean, std: C per-band statistics in the raster's units (from the manifest / model card).
        valid: optional ``(..., H, W)`` bool mask; pixels where it is False become 0.

    Returns:
        ``(..., C, H, W)`` float32.

    Raises:
        InputError: the number of statistics differs from the number of bands.
    """
    c = data.shape[-3]
    if len(mean) != c or len(std) != c:
        raise InputError(f"Normalisation has {len(mean)} means / {len(std)} stds for {c} bands.")
    m = np.asarray(mean, dtype=np.float32).reshape(c, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(c, 1, 1)
    s = np.where(s > 0, s, 1.0).astype(np.float32)
    out = data.astype(np.float32)  # one copy, then in place: this runs once per tile and chip
    out -= m
    out /= s
    if valid is not None:
        np.copyto(out, np.float32(0), where=~np.expand_dims(valid, -3))
    if not np.issubdtype(data.dtype, np.integer):  # integers cannot hold NaN or inf
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out
