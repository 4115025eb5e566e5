"""Tests of core.chips.arcgis: the map.txt parser and the ArcGIS files our export writes."""

from __future__ import annotations

import json

import pytest

from deeplandcover.core.chips.arcgis import parse_map_txt
from deeplandcover.core.chips.export import export_training_tiles
from deeplandcover.core.chips.folder import load_chip_folder
from deeplandcover.core.chips.options import ExportOptions
from deeplandcover.core.errors import ChipFolderError


def test_parse_map_txt_variants():
    text = "images\\1.tif  labels\\1.tif \r\nimages\\1.tif  labels\\1.tif \r\n\r\nimages\\2.tif images2\\2.tif  labels\\2.tif\n"
    assert parse_map_txt(text) == [
        ("images/1.tif", None, "labels/1.tif"),
        ("images/2.tif", "images2/2.tif", "labels/2.tif"),
    ]
    with pytest.raises(ChipFolderError, match="columns"):
        parse_map_txt("a b c d\n")


def test_our_export_reads_back_as_arcgis(eolearn, tmp_path):
    out = tmp_path / "chips"
    ours = export_training_tiles(
        ExportOptions(
            [eolearn / "s2l1c_2015-07-11.tif"],
            eolearn / "lulc_reference.tif",
            out,
            tile_size=32,
            stride=32,
            bands=[2, 3, 4, 8],
        )
    )
    text = (out / "map.txt").read_bytes()
    assert text.startswith(b"images\\000000000.tif  labels\\000000000.tif \r\n")
    st = json.loads((out / "esri_accumulated_stats.json").read_text())
    assert st["MetaDataMode"] == "Classified_Tiles" and st["NumTiles"] == len(ours.chips) == 9
    assert sum(st["ClassPixelStats"]["NumPixelsPerClass"]) == sum(c.pixel_count for c in ours.classes)
    (out / "manifest.json").unlink()
    back = load_chip_folder(out)
    assert back.origin == "arcgis" and [c.window for c in back.chips] == [c.window for c in ours.chips]
    assert [c.value for c in back.classes] == [c.value for c in ours.classes]
    assert back.stride == 32 and back.band_stats[1].mean == pytest.approx(ours.band_stats[1].mean)
    assert back.band_stats[1].std == pytest.approx(ours.band_stats[1].std)
