"""Reading the first band of a change output in the tests of ``core.change`` (from-to, CVA, change models)."""

from __future__ import annotations

import os

import numpy as np
import rasterio


def read_first_band(path: str | os.PathLike) -> tuple[np.ndarray, rasterio.DatasetReader]:
    """Band 1 of ``path`` as ``(H, W)`` in the file's dtype, and the closed dataset (for its metadata)."""
    with rasterio.open(path) as ds:
        return ds.read(1), ds
