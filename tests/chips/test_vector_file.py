"""core.chips.vector_file: reading vector labels onto a grid, class values of a field, classes and burn order."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin
from shapely.geometry import LineString, box

from deeplandcover.core.chips.vector_file import class_values, in_burn_order, read_vector, vector_classes
from deeplandcover.core.classes import IGNORE_INDEX, ClassInfo
from deeplandcover.core.errors import InputError
from deeplandcover.core.raster.grid import RasterGrid

GRID = RasterGrid(CRS.from_epsg(32633), from_origin(500000, 5800000, 10, 10), 10, 10)
TABLE = [ClassInfo(1, "Forest"), ClassInfo(2, "water")]


def test_text_and_integer_fields_become_class_values():
    text = pd.Series([" forest", "WATER", "2", None, "0"])
    assert class_values(text, "cls", "l.gpkg", TABLE, {0}).tolist() == [1, 2, 2, -1, IGNORE_INDEX]
    assert class_values(pd.Series([3.0, np.nan, 7.0]), "cls", "l.gpkg", [], set()).tolist() == [3, -1, 7]
    with pytest.raises(InputError, match="not named in the class table: lake"):
        class_values(pd.Series(["lake"]), "cls", "l.gpkg", TABLE, set())
    with pytest.raises(InputError, match="no class table was given"):
        class_values(pd.Series(["lake"]), "cls", "l.gpkg", [], set())
    with pytest.raises(InputError, match=r"outside the integers 0..254 \(e.g. 2.5\)"):
        class_values(pd.Series([1.0, 2.5]), "cls", "l.gpkg", [], set())
    with pytest.raises(InputError, match="is bool"):
        class_values(pd.Series([True, False]), "cls", "l.gpkg", [], set())


def test_classes_of_the_table_plus_defaults_for_values_it_lacks():
    classes, extra = vector_classes(TABLE, np.array([2, 5, 5, 1]))
    assert [(c.value, c.name) for c in classes] == [(1, "Forest"), (2, "water"), (5, "class 5")] and extra == [5]
    alone, extra = vector_classes([], np.array([4, 3, 4]))
    assert [c.value for c in alone] == [3, 4] and extra == []


def test_read_reprojects_checks_the_field_and_burns_large_polygons_first(tmp_path):
    small, large = box(500010, 5799950, 500030, 5799970), box(500000, 5799900, 500100, 5800000)
    line = LineString([(500000, 5799950), (500100, 5799950)])
    gdf = gpd.GeoDataFrame({"cls": [2, 1, 3]}, geometry=[small, large, line], crs=32633).to_crs(4326)
    gdf.to_file(tmp_path / "l.gpkg")
    got = read_vector(tmp_path / "l.gpkg", GRID, "cls", None)
    assert got.crs == GRID.crs and got.geometry.iloc[1].bounds == pytest.approx(large.bounds, abs=1e-3)
    assert in_burn_order(got)["cls"].tolist() == [1, 2, 3]  # largest polygon, smaller one, then the line
    with pytest.raises(InputError, match="'nope' is not in l.gpkg; choose one of cls"):
        read_vector(tmp_path / "l.gpkg", GRID, "nope", None)
    with pytest.raises(InputError, match="need a class field"):
        read_vector(tmp_path / "l.gpkg", GRID, None, None)
    (tmp_path / "bad.gpkg").write_text("not a vector")
    with pytest.raises(InputError, match="Cannot read labels bad.gpkg"):
        read_vector(tmp_path / "bad.gpkg", GRID, "cls", None)
