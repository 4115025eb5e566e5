"""Tests of core.chips.folder: reading chip folders (ours by manifest.json, ArcGIS ones by map.txt and their
statistics) and its errors."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import rasterio

from deeplandcover.core.chips.folder import load_chip_folder, read_arcgis_classified_tiles
from deeplandcover.core.errors import ChipFolderError


def _chip(path, data: np.ndarray, x0: float, y0: float, px: float = 0.5) -> None:
    """A GeoTIFF without internal georeferencing plus a .tfw world file, as ArcGIS exports chips."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(
            path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype
        ) as ds:
            ds.write(data)
    path.with_suffix(".tfw").write_text(f"{px}\n0\n0\n{-px}\n{x0 + px / 2}\n{y0 - px / 2}\n")


def _stats(mode: str = "Classified_Tiles", block: str = "ClassPixelStats") -> dict:
    d = {
        "Version": "1.0",
        "NumBands": 3,
        "TileSizeX": 8,
        "TileSizeY": 8,
        "NumClasses": 2,
        "NumTiles": 3,
        "OutputFeatures": False,
        "MetaDataMode": mode,
        "Classes": [
            {"ClassValue": 1, "ClassName": "1"},
            {"ClassValue": 2, "ClassName": "building", "Color": [255, 0, 0]},
        ],
        "BandStatsState": [
            {"Min": 0, "Max": 200, "Mean": 0, "StdDev": 0, "M1": 100.0 + b, "M2": 400.0 * 192, "Num": 192}
            for b in range(3)
        ],
        "InputRastersProps": {"RasterCount": 1, "SensorName": "MultiSpectral", "BandNames": ["", "", ""]},
    }
    if block == "ClassPixelStats":
        d[block] = {
            "NumClasses": 2,
            "NumImagesTotal": 3,
            "NumImagesPerClass": [3, 1],
            "NumPixelsPerClass": [180, 12],
            "NumClassesPerImage": {"Min": 1, "Max": 2, "Mean": 1.3, "Sum": 4, "Count": 3},
            "PixelsPerClass": [{"Min": 52, "Max": 64, "Mean": 60, "Sum": 180, "Count": 3}],
        }
    else:
        d[block] = {
            "NumClasses": 2,
            "NumImagesTotal": 3,
            "NumFeaturesTotal": 5,
            "NumImagesPerClass": [2, 1],
            "NumFeaturesPerClass": [4, 1],
        }
    return d


@pytest.fixture
def arcgis_folder(tmp_path):
    """Three 8x8 chips on a 4-px stride grid; map.txt with CRLF, backslashes, two spaces, a repeated line
    and an entry whose chip is missing (all seen in real exports)."""
    f = tmp_path / "arcgis"
    (f / "images").mkdir(parents=True)
    (f / "labels").mkdir()
    origins = {"000000001": (1000.0, 2000.0), "000000002": (1002.0, 2000.0), "000000005": (1000.0, 1998.0)}
    for cid, (x, y) in origins.items():
        _chip(f / "images" / f"{cid}.tif", np.full((3, 8, 8), int(cid[-1]), np.uint8), x, y)
        _chip(f / "labels" / f"{cid}.tif", np.full((1, 8, 8), 1, np.uint8), x, y)
    lines = [
        "images\\000000002.tif  labels\\000000002.tif ",
        "images\\000000001.tif  labels\\000000001.tif ",
        "images\\000000002.tif  labels\\000000002.tif ",
        "images\\000000005.tif\tlabels\\000000005.tif",
        "images\\000000009.tif  labels\\000000009.tif ",
    ]
    (f / "map.txt").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    (f / "esri_accumulated_stats.json").write_text(json.dumps(_stats()))
    return f


def test_read_classified_tiles(arcgis_folder):
    m = load_chip_folder(arcgis_folder)  # no manifest.json -> the ArcGIS reader
    assert m.origin == "arcgis" and m.kind == "single" and m.tile_size == 8
    assert [c.id for c in m.chips] == ["000000002", "000000001", "000000005"]  # duplicate and missing dropped
    assert m.sources["map_entries"] == 4 and m.sources["missing_chips"] == 1  # repeated line kept once
    assert [(c.value, c.name, c.pixel_count, c.chip_count) for c in m.classes] == [
        (1, "1", 180, 3),
        (2, "building", 12, 1),
    ]
    assert m.classes[1].color == "#ff0000"
    assert m.bands == [b.name for b in m.band_stats] == ["B1", "B2", "B3"]  # empty ArcGIS band names
    assert m.band_stats[2].mean == 102.0 and m.band_stats[0].std == pytest.approx(20.0)  # M1, sqrt(M2/Num)
    by_id = {c.id: c for c in m.chips}
    assert by_id["000000001"].transform == [0.5, 0.0, 1000.0, 0.0, -0.5, 2000.0]  # from the .tfw world file
    assert by_id["000000002"].window == [4, 0, 8, 8] and by_id["000000005"].window == [0, 4, 8, 8]
    assert m.stride == 4


def test_feature_stats_pair_and_emd_stats(arcgis_folder):
    f = arcgis_folder
    (f / "images2").mkdir()
    for p in (f / "images").glob("*.tif"):
        shutil.copy(p, f / "images2" / p.name)
        shutil.copy(p.with_suffix(".tfw"), f / "images2" / p.with_suffix(".tfw").name)
    ids = ["000000001", "000000002", "000000005"]
    (f / "map.txt").write_text("".join(f"images\\{i}.tif images2\\{i}.tif  labels\\{i}.tif\r\n" for i in ids))
    st = _stats(block="FeatureStats")
    st["BandStatsState2"] = st["BandStatsState"]
    (f / "esri_accumulated_stats.json").write_text(json.dumps(st))
    emd = {
        "Classes": [{"Value": 1, "Name": "1", "Color": [0, 0, 255]}],
        "AllTilesStats": [{"BandName": "Red", "Min": 0, "Max": 9, "Mean": 114.24, "StdDev": 28.16}] * 3,
    }
    (f / "esri_model_definition.emd").write_text(json.dumps(emd))
    m = read_arcgis_classified_tiles(f)
    assert m.kind == "pair" and all(c.image2 for c in m.chips) and len(m.band_stats2) == 3
    assert m.band_stats[0].mean == 114.24 and m.band_stats[0].std == 28.16  # real stats of the .emd win
    assert m.classes[0].color == "#0000ff" and [c.chip_count for c in m.classes] == [2, 1]
    assert m.sources["stats_block"] == "FeatureStats"


@pytest.mark.parametrize("value", [255, 300, -1])
def test_class_value_outside_uint8_labels_rejected(arcgis_folder, value):
    stats = _stats()
    stats["Classes"][1]["ClassValue"] = value
    (arcgis_folder / "esri_accumulated_stats.json").write_text(json.dumps(stats))
    with pytest.raises(ChipFolderError, match=rf"outside 0-254: {value} \('building'\).*Reclassify"):
        load_chip_folder(arcgis_folder)


@pytest.mark.parametrize("mode", ["PASCAL_VOC_rectangles", "Export_Tiles", "KITTI_rectangles"])
def test_other_metadata_modes_rejected(arcgis_folder, mode):
    (arcgis_folder / "esri_accumulated_stats.json").write_text(json.dumps(_stats(mode=mode, block="FeatureStats")))
    with pytest.raises(ChipFolderError, match=f"{mode}.*Classified_Tiles"):
        load_chip_folder(arcgis_folder)


def test_errors(tmp_path):
    with pytest.raises(ChipFolderError, match="does not exist"):
        load_chip_folder(tmp_path / "nope")
    with pytest.raises(ChipFolderError, match="no manifest.json"):
        load_chip_folder(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(ChipFolderError, match="corrupt"):
        load_chip_folder(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "deeplandcover-chips", "version": 99}))
    with pytest.raises(ChipFolderError, match="newer"):
        load_chip_folder(tmp_path)
