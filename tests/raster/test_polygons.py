"""core.raster.polygons: class polygons built strip by strip, merged across seams, equal to the raster's areas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import label

from deeplandcover.core.classes import ClassInfo
from deeplandcover.core.errors import CanceledError, InputError
from deeplandcover.core.provenance import read_provenance
from deeplandcover.core.raster.polygons import PolygonOptions, polygonize_classes

from ..helpers.rasters import make_raster

CLASSES = [ClassInfo(1, "forest"), ClassInfo(2, "water"), ClassInfo(3, "urban")]
CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])


def _read(path):
    import geopandas as gpd

    return gpd.read_file(path)


def _classes_image(h=61, w=47, seed=0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    a = gaussian_filter(rng.normal(size=(h, w)), 2.5)
    img = np.digitize(a, np.quantile(a, [0.35, 0.7])).astype(np.uint8) + 1
    img[:3, :5] = 255  # nodata
    return img


@pytest.mark.parametrize("block_rows", [2, 7, 64])
def test_polygons_equal_the_rasters_regions_and_areas(tmp_path, block_rows):
    import shapely

    img = _classes_image()
    raster = make_raster(tmp_path / "c.tif", img, nodata=255)
    res = polygonize_classes(raster, tmp_path / "p.gpkg", CLASSES, PolygonOptions(block_rows=block_rows))
    gdf = _read(res.path)
    regions = sum(label(img == v, structure=CROSS)[1] for v in (1, 2, 3))
    assert len(gdf) == res.features == regions  # one feature per 4-connected region, whatever the strips
    assert all(len(g.geoms) == 1 for g in gdf.geometry)  # merged pieces form one polygon each
    for c in CLASSES:
        pixels = int((img == c.value).sum())
        sub = gdf[gdf["value"] == c.value]
        assert set(sub["name"]) == {c.name} and sub["pixels"].sum() == pixels == res.pixels[c.value]
        assert sub["area_m2"].sum() == pytest.approx(pixels * 100.0) and sub["area_ha"].sum() == pytest.approx(
            pixels * 0.01
        )
        union = shapely.union_all(list(sub.geometry))
        assert union.area == pytest.approx(pixels * 100.0, rel=1e-9)  # the union covers exactly the class pixels
    assert gdf.crs.to_epsg() == 32633


def test_a_region_across_seams_is_one_feature(tmp_path):
    img = np.full((40, 30), 1, np.uint8)
    img[2:38, 10] = 2  # a bar across every seam of 4-row strips
    img[5:30, 20] = 3  # a U whose two arms meet only in a later strip
    img[5:30, 25] = 3
    img[29, 20:26] = 3
    raster = make_raster(tmp_path / "c.tif", img)
    gdf = _read(polygonize_classes(raster, tmp_path / "p.gpkg", CLASSES, PolygonOptions(block_rows=4)).path)
    assert sorted(gdf["value"]) == [1, 2, 3]
    assert gdf.set_index("value").loc[2, "pixels"] == 36 and gdf.set_index("value").loc[3, "pixels"] == 25 + 25 + 4
    assert gdf.geometry.iloc[0].geom_type == "MultiPolygon"


def test_minimum_mapping_unit_simplification_and_provenance(tmp_path):
    img = _classes_image(seed=1)
    raster = make_raster(tmp_path / "c.tif", img, nodata=255)
    full = polygonize_classes(raster, tmp_path / "a.gpkg", CLASSES)
    mmu = polygonize_classes(
        raster,
        tmp_path / "b.gpkg",
        CLASSES,
        PolygonOptions(min_area_m2=500.0, simplify=10.0, block_rows=5),
        tags={"DLC_MODEL": "m.onnx", "DLC_PARAMETERS": '{"a": 1}'},
    )
    a, b = _read(full.path), _read(mmu.path)
    assert (a["area_m2"] < 500).sum() == mmu.dropped > 0 and len(b) == len(a) - mmu.dropped
    assert (b["area_m2"] >= 500).all()
    nverts = lambda g: sum(len(p.exterior.coords) for p in g.geoms)  # noqa: E731
    assert sum(map(nverts, b.geometry)) < sum(nverts(g) for g, s in zip(a.geometry, a["area_m2"]) if s >= 500)
    assert read_provenance(mmu.path) == {"model": "m.onnx", "parameters": {"a": 1}}


def test_errors_and_cancel(tmp_path):
    from deeplandcover.core.feedback import NullFeedback

    floats = make_raster(tmp_path / "f.tif", np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="integer class raster"):
        polygonize_classes(floats, tmp_path / "x.gpkg", CLASSES)
    with pytest.raises(InputError, match="block_rows"):
        polygonize_classes(floats, tmp_path / "x.gpkg", CLASSES, PolygonOptions(block_rows=1))

    class Cancel(NullFeedback):
        def is_canceled(self):
            return True

    raster = make_raster(tmp_path / "c.tif", _classes_image())
    with pytest.raises(CanceledError):
        polygonize_classes(raster, tmp_path / "x.gpkg", CLASSES, feedback=Cancel())
    assert not list(tmp_path.glob("*.gpkg")) and not list(tmp_path.glob(".*"))
    empty = make_raster(tmp_path / "e.tif", np.full((5, 5), 255, np.uint8), nodata=255)
    res = polygonize_classes(empty, tmp_path / "e.gpkg", CLASSES)
    assert res.features == 0 and len(_read(res.path)) == 0
