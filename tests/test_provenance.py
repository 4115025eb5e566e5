"""core.provenance: the record of a run, its GeoTIFF tags and reading them back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from deeplandcover.core.provenance import Provenance, for_run, json_safe, plugin_version, read_provenance


@dataclass
class _Options:
    raster: Path
    tile_size: int
    aoi: dict


def test_json_safe_turns_paths_dataclasses_and_geometries_into_data():
    geom = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    got = json_safe(_Options(Path("/data/a.tif"), 256, {"shapes": [geom, geom], "crs": object}))
    assert got["raster"] == "/data/a.tif" and got["tile_size"] == 256
    assert got["aoi"]["shapes"] == "2 geometries" and isinstance(got["aoi"]["crs"], str)
    assert json_safe(geom) == "Polygon geometry" and json_safe((1, None, 2.5)) == [1, None, 2.5]


def test_for_run_hashes_the_model_and_names_the_files(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model bytes" * 1000)
    p = for_run("classifypixels", _Options(tmp_path / "a.tif", 128, {}), [tmp_path / "a.tif"], model, "unet", {"x": 1})
    assert p.model == "m.onnx" and p.model_sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    assert p.inputs == ["a.tif"] and p.parameters["tile_size"] == 128 and p.parameters["x"] == 1
    assert p.version == plugin_version() != "unknown"
    none = for_run("computeaccuracy", None, [])
    assert none.parameters == {} and none.model == "" and none.model_sha256 == ""


def test_tags_leave_out_empty_items_and_read_back(raster_factory):
    p = Provenance("detectchange", {"method": "cva"}, ["a.tif", "b.tif"], created="2026-01-02T03:04:05+00:00")
    tags = p.tags()
    assert "DLC_MODEL" not in tags and tags["TIFFTAG_DATETIME"] == "2026:01:02 03:04:05"
    assert tags["TIFFTAG_SOFTWARE"] == f"Deep Land Cover {p.version}"
    path = raster_factory("out.tif", np.zeros((4, 4), np.uint8))
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(**tags)
    back = read_provenance(path)
    assert back["tool"] == "detectchange" and back["parameters"] == {"method": "cva"}
    assert back["inputs"] == ["a.tif", "b.tif"] and back["created"] == p.created and "model" not in back


def test_a_file_without_provenance_reads_as_empty(raster_factory):
    assert read_provenance(raster_factory("plain.tif", np.zeros((3, 3), np.uint8))) == {}
