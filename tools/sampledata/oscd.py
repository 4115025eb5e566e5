"""Convert OSCD cities (Onera Satellite Change Detection, via ChenHongruixuan/ChangeDetectionRepository).

From ``original/images/<city>/`` and ``original/train_labels/<city>/cm/``: for each date the 13
single-band GeoTIFFs are stacked onto that date's B02 (10 m) grid (:func:`.rasters.stack_s2_bands`,
bilinear for the 20 m and 60 m bands), and the change map, which has no georeferencing and holds
1 = no change / 2 = change, is recoded to 0 / 1 and put on the date-1 B02 grid, with a colour table
and a black/white PNG preview. Every city folder under ``original/images/`` that has labels is
converted (the catalogue holds bercy and rennes).

Reference: R. Caye Daudt, B. Le Saux, A. Boulch, Y. Gousseau, "Urban Change Detection for Multispectral
Earth Observation Using Convolutional Neural Networks", IGARSS 2018.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio

from deeplandcover.core.raster.grid import RasterGrid

from .rasters import RESAMPLING_TAG, S2_BANDS, stack_s2_bands, write_geotiff

SENSOR = "Sentinel-2 MSI Level-1C"
CHANGE_CONTENT = "urban change between the two dates: 1 = change, 0 = no change"


def cities(folder: Path) -> list[str]:
    """Cities of ``folder/original`` that have images and change labels, sorted."""
    images = folder / "original" / "images"
    labels = folder / "original" / "train_labels"
    return sorted(p.name for p in images.iterdir() if p.is_dir() and (labels / p.name / "cm").is_dir())


def convert(folder: Path) -> list[Path]:
    """Write ``<city>/`` folders (two 13-band scenes, change mask GeoTIFF and PNG) into ``folder``.

    Returns:
        The files written.

    Raises:
        ValueError: a band is missing, ``dates.txt`` is unreadable, or the change map does not have the
            date-1 B02 size or holds values other than 1 and 2.
    """
    written = []
    for city in cities(folder):
        written += convert_city(folder, city)
    return written


def read_dates(path: Path) -> tuple[str, str]:
    """``(date 1, date 2)`` as ``YYYY-MM-DD`` from an OSCD ``dates.txt`` (``date_1: 20161130``)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        value = value.strip()
        if key.strip() in ("date_1", "date_2") and len(value) == 8 and value.isdigit():
            found[key.strip()] = f"{value[:4]}-{value[4:6]}-{value[6:]}"
    if len(found) != 2:
        raise ValueError(f"{path} does not give date_1 and date_2 as YYYYMMDD.")
    return found["date_1"], found["date_2"]


def _band_files(folder: Path) -> dict[str, Path]:
    """``{band: file}`` of an ``imgs_1``/``imgs_2`` folder (file names end in ``_<band>.tif``)."""
    files = {}
    for p in sorted(folder.glob("*.tif")):
        band = p.stem.rsplit("_", 1)[-1]
        if band in S2_BANDS:
            files[band] = p
    return files


def convert_city(folder: Path, city: str) -> list[Path]:
    """Convert one city (see :func:`convert`)."""
    src = folder / "original" / "images" / city
    out = folder / city
    out.mkdir(parents=True, exist_ok=True)
    written, grid1 = [], None
    for k, date in enumerate(read_dates(src / "dates.txt"), 1):
        data, grid = stack_s2_bands(_band_files(src / f"imgs_{k}"))
        grid1 = grid1 or grid
        tags = {"ACQUISITION_DATE": date, "RESAMPLING": RESAMPLING_TAG, "SENSOR": SENSOR}
        tags["UNITS"] = "digital number (TOA reflectance x 10000)"
        path = out / f"{city}_{date}_s2l1c_13b_10m.tif"
        written.append(write_geotiff(path, data, grid, tags=tags, descriptions=S2_BANDS))
    change = _change_map(folder / "original" / "train_labels" / city / "cm" / f"{city}-cm.tif", grid1)
    cmap = {0: (0, 0, 0, 255), 1: (255, 255, 255, 255)}
    mask = out / f"{city}_change_mask.tif"
    written.append(
        write_geotiff(mask, change, grid1, tags={"CONTENT": CHANGE_CONTENT}, descriptions=["change"], colormap=cmap)
    )
    written.append(_preview(change, out / f"{city}_change_mask.png"))
    return written


def _change_map(path: Path, grid: RasterGrid) -> np.ndarray:
    """The change map of ``path`` recoded 1 -> 0 (no change), 2 -> 1 (change), checked against ``grid``."""
    with warnings.catch_warnings(), rasterio.open(path) as ds:  # no georeferencing: rasterio warns
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        cm = ds.read(1)
    if cm.shape != (grid.height, grid.width):
        raise ValueError(
            f"{path.name} is {cm.shape[::-1]} pixels, date-1 B02 {(grid.width, grid.height)}: not one grid."
        )
    values = set(np.unique(cm).tolist())
    if not values <= {1, 2}:
        raise ValueError(f"{path.name} holds values {sorted(values)}; an OSCD change map holds 1 and 2.")
    return (cm == 2).astype(np.uint8)


def _preview(change: np.ndarray, path: Path) -> Path:
    """Black/white RGB PNG of a 0/1 change mask (255 = change)."""
    rgb = np.repeat((change * 255).astype(np.uint8)[np.newaxis], 3, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="PNG", width=rgb.shape[2], height=rgb.shape[1], count=3, dtype="uint8"
        ) as dst:
            dst.write(rgb)
    return path
