"""core.change.result: the provenance tags of a change run and its change polygons."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from deeplandcover.core.change.result import change_polygons, run_tags
from deeplandcover.core.classes import ClassInfo
from deeplandcover.core.feedback import NullFeedback
from deeplandcover.core.provenance import read_provenance
from deeplandcover.core.raster.polygons import PolygonOptions

from ..helpers.rasters import make_raster


@dataclass
class _Options:
    before: Path
    after: Path
    output: Path
    threshold: float = 0.5
    polygons_path: Path | None = None
    polygons: PolygonOptions = field(default_factory=PolygonOptions)


@pytest.fixture
def options(tmp_path) -> _Options:
    change = np.zeros((8, 8), np.uint8)
    change[2:5, 3:7] = 1  # one 3 x 4 px change patch
    before = make_raster(tmp_path / "before.tif", np.ones((2, 8, 8), np.uint16))
    after = make_raster(tmp_path / "after.tif", np.ones((2, 8, 8), np.uint16))
    return _Options(before, after, make_raster(tmp_path / "change.tif", change))


def test_run_tags_name_the_tool_both_dates_and_the_options(options):
    tags = run_tags("change_vector_analysis", options)
    assert tags["DLC_TOOL"] == "change_vector_analysis"
    assert json.loads(tags["DLC_INPUTS"]) == ["before.tif", "after.tif"]
    assert json.loads(tags["DLC_PARAMETERS"])["threshold"] == 0.5
    assert "DLC_MODEL" not in tags  # a method without a model stores no empty model item


def test_change_polygons_only_when_asked(options):
    entries = [ClassInfo(0, "no change", "#000000"), ClassInfo(1, "change", "#ff0000")]
    assert change_polygons(options, entries, {}, NullFeedback()) is None
    options.polygons_path = options.output.with_suffix(".gpkg")
    tags = run_tags("from_to_change", options)
    path = change_polygons(options, entries, tags, NullFeedback())
    polygons = gpd.read_file(path).set_index("name")
    assert sorted(polygons.index) == ["change", "no change"]
    assert polygons.loc["change", "pixels"] == 12 and polygons.loc["change", "area_m2"] == pytest.approx(1200.0)
    assert polygons.loc["change"].geometry.area == pytest.approx(12 * 100.0)  # 12 px of 10 m x 10 m
    assert read_provenance(path)["tool"] == "from_to_change"
