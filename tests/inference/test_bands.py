"""core.inference.bands: which raster bands feed which model channels (names, Sentinel-2 aliases, band map)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deeplandcover.core.errors import BandMismatchError, InputError
from deeplandcover.core.inference.bands import parse_band_map, plan_sources, select_bands
from deeplandcover.core.modelcard import ModelCard

S2 = ["B02", "B03", "B04", "B08"]


def _card(**kw) -> ModelCard:
    return ModelCard(architecture="unet", bands=S2, mean=[1.0, 2.0, 3.0, 4.0], std=[5.0] * 4, classes=[], **kw)


def test_select_bands_by_name_alias_position_or_map():
    assert select_bands(S2, ["b08", "B04", "b03", "b02", "B11"], "r.tif") == (4, 3, 2, 1)  # case-insensitive
    assert select_bands(S2, ["B2", "B3", "B4", "B8", "B8A"], "r.tif") == (1, 2, 3, 4)  # B02 is B2; B8A is not B8
    assert select_bands(S2, ["B1", "B2", "B3", "B4"], "r.tif") == (1, 2, 3, 4)  # no descriptions: first bands
    assert select_bands(S2, ["red", "green", "blue", "nir", "x"], "r.tif", positional=True) == (1, 2, 3, 4)
    assert select_bands(S2, ["a", "b", "c", "d", "e"], "r.tif", band_map=[5, 4, 3, 2]) == (5, 4, 3, 2)


def test_select_bands_errors_name_both_sides_and_the_fix():
    with pytest.raises(BandMismatchError) as e:
        select_bands(S2, ["B02", "B03", "B04", "SWIR"], "scene.tif")
    msg = str(e.value)
    assert "scene.tif has 4 bands" in msg and "not found: ['B08']" in msg and "band mapping" in msg
    with pytest.raises(BandMismatchError, match="does not fit"):
        select_bands(S2, ["a", "b", "c", "d"], "r.tif", band_map=[1, 2, 3, 5])  # band 5 of 4
    with pytest.raises(BandMismatchError, match="does not fit"):
        select_bands(S2, ["a", "b", "c", "d"], "r.tif", band_map=[1, 2, 3])  # one per model band


def test_named_sentinel2_bands_never_stand_in_for_others_by_position():
    """B02,B03,B04,B05 are named bands: a model's B08 is missing, not band 4 (B05) by position."""
    with pytest.raises(BandMismatchError, match=r"not found: \['B08'\]"):
        select_bands(S2, ["B02", "B03", "B04", "B05"], "scene.tif")


def test_parse_band_map_accepts_lists_and_separators():
    assert parse_band_map("4;3 2,8") == [4, 3, 2, 8] and parse_band_map([2, 1]) == [2, 1]
    assert parse_band_map(None) is None and parse_band_map([]) is None
    with pytest.raises(InputError, match="1-based"):
        parse_band_map([0, 1])
    with pytest.raises(InputError, match="1-based"):
        parse_band_map("1,-2")


def test_plan_sources_single_series_and_pair():
    one = plan_sources(_card(), [Path("a.tif")], [["B08", "B04", "B03", "B02"]], None)
    assert [(s.ds_index, s.bands, s.mean, s.date, s.names) for s in one] == [
        (0, (4, 3, 2, 1), (1.0, 2.0, 3.0, 4.0), 0, tuple(S2))
    ]
    with pytest.raises(InputError, match="one raster at a time"):
        plan_sources(_card(), [Path("a.tif"), Path("b.tif")], [S2, S2], None)
    series = _card(layout="BTCHW", time_steps=3)
    paths = [Path(f"d{t}.tif") for t in range(3)]
    assert [(s.ds_index, s.date) for s in plan_sources(series, paths, [S2] * 3, None)] == [(0, 0), (1, 1), (2, 2)]
    with pytest.raises(InputError, match="series of 3 dates"):
        plan_sources(series, paths[:2], [S2] * 2, None)
