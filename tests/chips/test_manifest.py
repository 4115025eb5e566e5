"""core.chips.manifest: save/load round trip."""

from __future__ import annotations

from deeplandcover.core.chips.folder import load_chip_folder
from deeplandcover.core.chips.manifest import BandStats, ChipRecord, Manifest
from deeplandcover.core.classes import ClassInfo


def _manifest() -> Manifest:
    return Manifest(
        kind="sequence",
        crs_wkt="EPSG:32633",
        pixel_size=[10.0, 10.0],
        tile_size=32,
        stride=16,
        bands=["B02", "B03"],
        band_stats=[BandStats("B02", 0, 1, 0.5, 0.1, 10), BandStats("B03", 0, 1, 0.4, 0.2, 10)],
        classes=[ClassInfo(1, "forest", "#00ff00", 100, 2)],
        chips=[
            ChipRecord(
                "000000001",
                "images/000000001.tif",
                "labels/000000001.tif",
                [0, 0, 32, 32],
                [10, 0, 500000, 0, -10, 5800000],
                "0_0",
                None,
                0.5,
                {"1": 100},
            )
        ],
        time_steps=["2015-07-11", "2015-07-31"],
    )


def test_round_trip(tmp_path):
    m = _manifest()
    m.save(tmp_path)
    back = load_chip_folder(tmp_path)
    assert back == m
    assert back.num_time_steps == 2 and back.class_values == [1]
