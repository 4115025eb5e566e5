"""Convert eo-learn's example EOPatch (sentinel-hub/eo-learn ``example_data/``) into ``eolearn_slovenia_s2/``.

From ``original/`` (the upstream ``.npy`` arrays, ``bbox.geojson``, ``timestamps.json``, GeoPackages):
the grid is the bbox divided by the array shape (100 x 101 pixels of about 10 m, CRS of the bbox);
each of the 5 scenes of ``REFERENCE_SCENES.npy`` is dated by matching its NDVI, (B08 - B04) / (B08 +
B04), exactly against the 68 dates of ``NDVI.npy``, and written as a 13-band float32 GeoTIFF; the
68-date layers (NDVI, cloud probability and masks) become one band per date; LULC, DEM and the
polygons follow, with the tables that describe them. SOURCE.md in the set folder describes each file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import from_bounds

from deeplandcover.core.raster.grid import RasterGrid

from .rasters import S2_BANDS, write_csv, write_geotiff

PATCH = "original/TestEOPatch"
SENSOR = "Sentinel-2 MSI Level-1C"

#: value, class name, RGB colour (colours: this project's choice); the names are eo-learn's LULC legend.
LULC = (
    (0, "no data", (255, 255, 255)),
    (1, "cultivated land", (255, 255, 0)),
    (2, "forest", (5, 73, 7)),
    (3, "grassland", (255, 165, 0)),
    (4, "shrubland", (128, 96, 0)),
    (5, "water", (6, 154, 243)),
    (6, "wetlands", (149, 208, 252)),
    (7, "tundra", (150, 123, 182)),
    (8, "artificial surface", (220, 20, 60)),
    (9, "bareland", (166, 166, 166)),
    (10, "snow and ice", (0, 0, 0)),
)

#: output file, EOPatch array, dtype, CONTENT tag of the 68-date layers.
SERIES = (
    (
        "ndvi_timeseries.tif",
        "data/NDVI.npy",
        "float32",
        "NDVI from Sentinel-2 L1C (B08-B04)/(B08+B04), one band per date",
    ),
    (
        "cloud_probability_timeseries.tif",
        "data/CLP.npy",
        "float32",
        "cloud probability 0-1 (eo-learn CLP), one band per date",
    ),
    ("cloud_mask_timeseries.tif", "mask/CLM.npy", "uint8", "cloud mask CLM, 1 = cloud, 0 = clear, one band per date"),
    (
        "valid_mask_timeseries.tif",
        "mask/IS_VALID.npy",
        "uint8",
        "IS_VALID mask, 1 = valid (data and no cloud), one band per date",
    ),
    ("data_mask_timeseries.tif", "mask/IS_DATA.npy", "uint8", "IS_DATA mask, 1 = data present, one band per date"),
)


def convert(folder: Path) -> list[Path]:
    """Write the converted files of the set into ``folder`` (which holds ``original/``).

    Returns:
        The files written.

    Raises:
        ValueError: a scene of ``REFERENCE_SCENES.npy`` matches no date, or several, by its NDVI.
    """
    patch = folder / PATCH
    grid = patch_grid(patch, np.load(patch / "mask_timeless/LULC.npy").shape[:2])
    times = json.loads((patch / "timestamps.json").read_text(encoding="utf-8"))
    written = _scenes(folder, grid, times)
    for name, array, dtype, content in SERIES:
        data = np.load(patch / array)[..., 0].astype(dtype)
        written.append(write_geotiff(folder / name, data, grid, tags={"CONTENT": content}, descriptions=times))
    written += _timeless(folder, grid)
    written.append(_dates_table(folder, times))
    return written


def patch_grid(patch: Path, shape: tuple[int, int]) -> RasterGrid:
    """The EOPatch grid: CRS and corners of ``bbox.geojson``, pixel size = bbox / ``(rows, cols)``."""
    bbox = json.loads((patch / "bbox.geojson").read_text(encoding="utf-8"))
    xs = [p[0] for p in bbox["coordinates"][0]]
    ys = [p[1] for p in bbox["coordinates"][0]]
    crs = CRS.from_user_input(bbox["crs"]["properties"]["name"])
    rows, cols = shape
    return RasterGrid(crs, from_bounds(min(xs), min(ys), max(xs), max(ys), cols, rows), cols, rows)


def match_dates(scenes: np.ndarray, ndvi: np.ndarray) -> list[int]:
    """Time index of each scene: the date whose NDVI equals the scene's (B08 - B04) / (B08 + B04) exactly.

    Args:
        scenes: ``(S, rows, cols, 13)`` float32 reflectance, band order :data:`S2_BANDS` (B04 = 3, B08 = 7).
        ndvi: ``(T, rows, cols, 1)`` float32.

    Raises:
        ValueError: a scene matches no date or several.
    """
    out = []
    for i, s in enumerate(scenes):
        b4, b8 = s[..., 3], s[..., 7]
        v = (b8 - b4) / (b8 + b4)
        hits = [t for t in range(len(ndvi)) if np.array_equal(ndvi[t, ..., 0], v)]
        if len(hits) != 1:
            raise ValueError(f"REFERENCE_SCENES.npy scene {i} matches {len(hits)} NDVI dates (1 expected).")
        out.append(hits[0])
    return out


def _scenes(folder: Path, grid: RasterGrid, times: list[str]) -> list[Path]:
    patch = folder / PATCH
    scenes = np.load(folder / "original/REFERENCE_SCENES.npy")
    clm = np.load(patch / "mask/CLM.npy")
    index = match_dates(scenes, np.load(patch / "data/NDVI.npy"))
    rows, written = [], []
    for i in sorted(range(len(scenes)), key=lambda k: index[k]):
        t = index[i]
        name = f"s2l1c_{times[t][:10]}.tif"
        tags = {
            "ACQUISITION_DATETIME": times[t],
            "SENSOR": SENSOR,
            "SOURCE_ARRAY": f"REFERENCE_SCENES.npy[{i}]",
            "TIME_INDEX": str(t),
            "UNITS": "top-of-atmosphere reflectance (0-1)",
        }
        data = np.moveaxis(scenes[i], -1, 0)
        written.append(write_geotiff(folder / name, data, grid, tags=tags, descriptions=S2_BANDS))
        rows.append((name, times[t], i, t, round(float(clm[t].mean()), 3)))
    header = (
        "file",
        "acquisition_datetime",
        "reference_scenes_index",
        "time_index_in_timestamps",
        "cloud_fraction_CLM",
    )
    written.append(write_csv(folder / "s2l1c_scenes.csv", header, rows))
    return written


def _timeless(folder: Path, grid: RasterGrid) -> list[Path]:
    patch = folder / PATCH
    lulc = np.load(patch / "mask_timeless/LULC.npy")[..., 0]
    if lulc.max() > 255:
        raise ValueError(f"LULC.npy holds value {lulc.max()}; the reference raster is uint8.")
    cmap = {v: (*c, 255) for v, _, c in LULC}
    tags = {"CONTENT": "land use / land cover reference, see lulc_legend.csv"}
    ref = write_geotiff(
        folder / "lulc_reference.tif",
        lulc.astype(np.uint8),
        grid,
        tags=tags,
        descriptions=["LULC class"],
        colormap=cmap,
    )
    dem = np.load(patch / "data_timeless/DEM.npy")[..., 0].astype(np.float32)
    dem_tif = write_geotiff(folder / "dem.tif", dem, grid, descriptions=["elevation (m)"])
    legend = write_csv(
        folder / "lulc_legend.csv", ("value", "name", "red", "green", "blue"), [(v, n, *c) for v, n, c in LULC]
    )
    polygons = folder / "lulc_polygons.gpkg"
    shutil.copyfile(patch / "vector_timeless/LULC.gpkg", polygons)
    return [ref, dem_tif, legend, polygons]


def _dates_table(folder: Path, times: list[str]) -> Path:
    patch = folder / PATCH
    clm = np.load(patch / "mask/CLM.npy")
    valid = np.load(patch / "mask/IS_VALID.npy")
    rows = [
        (t + 1, when, round(float(clm[t].mean()), 3), round(float(valid[t].mean()), 3)) for t, when in enumerate(times)
    ]
    header = ("band", "acquisition_datetime", "cloud_fraction_CLM", "valid_fraction_IS_VALID")
    return write_csv(folder / "timeseries_dates.csv", header, rows)
