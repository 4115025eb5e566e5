"""Classify Pixels outputs: provenance tags, Cloud-Optimised GeoTIFF, class polygons equal to the raster."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import rasterio

from deeplandcover.core.inference.engine import classify_pixels
from deeplandcover.core.inference.options import ClassifyOptions, OutputPaths
from deeplandcover.core.provenance import plugin_version, read_provenance
from deeplandcover.core.raster.polygons import PolygonOptions

from ..helpers.onnx_models import make_model, smooth_image
from ..helpers.rasters import make_raster

BANDS = ["blue", "green", "red", "nir"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    work = tmp_path_factory.mktemp("outputs")
    image = smooth_image(4, 150, 170, seed=5)
    model = make_model(work / "conv.onnx", BANDS, 3, layers=4, seed=3, balance_on=image, tile_size=64, overlap=16)
    return make_raster(work / "img.tif", image, descriptions=BANDS), model


def test_outputs_carry_provenance_and_polygons_match(setup, tmp_path):
    import geopandas as gpd

    raster, model = setup
    opts = ClassifyOptions(threads=1, polygons=PolygonOptions(block_rows=32))
    res = classify_pixels(
        [raster], model, OutputPaths(tmp_path / "c.tif", tmp_path / "p.tif", polygons=tmp_path / "c.gpkg"), opts
    )
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    for out in (res.output, res.probabilities, res.polygons):
        prov = read_provenance(out)
        assert prov["model"] == "conv.onnx" and prov["model_sha256"] == sha and prov["architecture"] == "testconv"
        assert prov["version"] == plugin_version() != "unknown" and prov["inputs"] == ["img.tif"]
        assert prov["parameters"]["tile_size_used"] == 64 and prov["parameters"]["polygons"]["block_rows"] == 32
        assert prov["created"].endswith("+00:00")
    with rasterio.open(res.output) as ds:
        assert ds.tags()["TIFFTAG_SOFTWARE"].startswith("Deep Land Cover ")
        cls = ds.read(1)
    gdf = gpd.read_file(res.polygons)
    for c in res.classes:  # polygon areas are the class raster's areas
        assert gdf.loc[gdf["value"] == c.value, "pixels"].sum() == res.pixel_counts[c.value] == (cls == c.value).sum()
        assert gdf.loc[gdf["value"] == c.value].area.sum() == pytest.approx(100.0 * res.pixel_counts[c.value])


def test_cog_output(setup, tmp_path):
    raster, model = setup
    plain = classify_pixels([raster], model, tmp_path / "a.tif", ClassifyOptions(threads=1))
    cog = classify_pixels(
        [raster], model, OutputPaths(tmp_path / "b.tif", tmp_path / "bp.tif"), ClassifyOptions(threads=1, cog=True)
    )
    for path in (cog.output, cog.probabilities):
        with rasterio.open(path) as ds:
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert json.loads(ds.tags()["DLC_PARAMETERS"])["cog"] is True
    with rasterio.open(plain.output) as a, rasterio.open(cog.output) as b:
        assert a.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG"
        np.testing.assert_array_equal(a.read(), b.read())
        assert a.colormap(1) == b.colormap(1) and b.nodata == 255 and a.transform == b.transform
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.qml", "a.tif", "b.qml", "b.tif", "bp.tif"]
