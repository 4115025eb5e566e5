"""GeoTIFF output: the creation profile every raster output uses, and atomic writes.

A file is written under a temporary name beside its final path and renamed when complete, so a
cancelled or failed run never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .grid import RasterGrid


def geotiff_profile(grid: RasterGrid, count: int, dtype: str, nodata: float | None = None, tile: int = 256) -> dict:
    """rasterio profile of a tiled, DEFLATE-compressed GeoTIFF on ``grid``.

    Tiles are only requested when the raster is at least one tile big (GDAL needs 16-multiple
    block sizes); BIGTIFF is used when needed.
    """
    prof = {
        "driver": "GTiff", "crs": grid.crs, "transform": grid.transform, "width": grid.width,
        "height": grid.height, "count": count, "dtype": dtype, "nodata": nodata,
        "compress": "deflate", "BIGTIFF": "IF_SAFER",
    }
    if grid.width >= tile and grid.height >= tile:
        prof.update(tiled=True, blockxsize=tile, blockysize=tile)
    if np.dtype(dtype).kind in "iu":
        prof["predictor"] = 2
    return prof

_SIDECARS = (".aux.xml", ".ovr", ".msk")

@contextlib.contextmanager
def atomic_output(final_path: str | os.PathLike) -> Iterator[Path]:
    """Write to a temporary file beside ``final_path``, rename it into place on success.

    On any exception (cancel included) the temporary file and its sidecars are deleted and
    ``final_path`` is left untouched, so nothing half-written ever looks complete.

    Yields:
        The temporary path to write to (same folder and suffix as ``final_path``).
    """
    final = Path(final_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.tmp-{uuid.uuid4().hex[:8]}{final.suffix}")
    try:
        yield tmp
        os.replace(tmp, final)
        for side in _SIDECARS:
            if Path(str(tmp) + side).exists():
                os.replace(str(tmp) + side, str(final) + side)
    finally:
        for p in [tmp, *(Path(str(tmp) + s) for s in _SIDECARS)]:
            if p.exists():
                p.unlink()
