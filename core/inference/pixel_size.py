"""The model's training pixel size against the raster's: the grid to resample onto, and the mismatch warning.

Model cards record the training pixel size in metres (``pixel_size``, ``pixel_size_units``); rasters give
theirs in CRS units, converted with :func:`core.raster.grid.metres_per_unit` (geographic rasters at their
centre latitude).
"""

from __future__ import annotations

import rasterio
import rasterio.transform

from ..modelcard import ModelCard
from ..raster.grid import RasterGrid, metres_per_unit


def _card_metres(card: ModelCard) -> tuple[float, float] | None:
    """The model's training pixel size ``(x, y)`` in metres, or None when the card has none in metres."""
    if not card.pixel_size or card.pixel_size_units != "metre" or card.pixel_size[0] <= 0:
        return None
    px = float(card.pixel_size[0])
    py = float(card.pixel_size[1]) if len(card.pixel_size) > 1 and card.pixel_size[1] > 0 else px
    return px, py


def model_grid(card: ModelCard, grid: RasterGrid, rel_tol: float = 0.01) -> RasterGrid | None:
    """``grid``'s extent (same CRS, same upper-left corner) on the model's pixel size.

    Args:
        card: the model card; its ``pixel_size`` (metres) is the target.
        grid: the input raster's grid (north-up). Geographic CRSs get the metre size converted at the
            centre latitude (see :func:`core.raster.grid.metres_per_unit`).
        rel_tol: relative difference below which the pixel sizes count as equal.

    Returns:
        The resampled grid (width/height rounded to whole pixels), or None when the sizes already match
        or the card records no pixel size in metres.
    """
    want, per_unit = _card_metres(card), metres_per_unit(grid)
    if want is None or per_unit is None:
        return None
    tx, ty = want[0] / per_unit[0], want[1] / per_unit[1]
    px, py = grid.pixel_size
    if abs(px / tx - 1) <= rel_tol and abs(py / ty - 1) <= rel_tol:
        return None
    left, bottom, right, top = grid.bounds
    return RasterGrid(
        grid.crs,
        rasterio.transform.from_origin(left, top, tx, ty),
        max(1, round((right - left) / tx)),
        max(1, round((top - bottom) / ty)),
    )


def check_pixel_size(card: ModelCard, grid: RasterGrid, warnings: list[str]) -> None:
    """Append a warning to ``warnings`` when the raster's pixels differ from the training pixels by more than 25 %.

    Geographic rasters are compared at their centre latitude (:func:`core.raster.grid.metres_per_unit`).
    """
    want, per_unit = _card_metres(card), metres_per_unit(grid)
    if want is None or per_unit is None:
        return
    have = grid.pixel_size[0] * per_unit[0]
    if not 0.8 <= have / want[0] <= 1.25:
        warnings.append(
            f"The raster's pixels are about {have:.3g} m but the model was trained on {want[0]:.3g} m "
            "pixels; results may be poor. Set RESAMPLE (resample=True) to classify it resampled "
            "to the model's pixel size, or warp it yourself (Raster > Projections > Warp)."
        )
