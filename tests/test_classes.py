"""core.classes: colours, the class-table CSV reader, "no label" entries and the QML style both ways."""

from __future__ import annotations

import numpy as np
import pytest

from deeplandcover.core.classes import (
    IGNORE_INDEX,
    ClassInfo,
    class_table_for_raster,
    colormap,
    hex_to_rgb,
    palette_color,
    raster_colors,
    read_class_table,
    read_qml_classes,
    rgb_to_hex,
    split_ignored,
    write_class_qml,
)
from deeplandcover.core.errors import InputError


def test_colours_both_ways():
    assert hex_to_rgb("#054907") == (5, 73, 7) and hex_to_rgb("ff0000") == (255, 0, 0)
    assert hex_to_rgb("red", default=(1, 2, 3)) == (1, 2, 3)
    assert rgb_to_hex((5, 73, 7, 255)) == "#054907" and rgb_to_hex([254.9, 0, 0]) == "#fe0000"
    with pytest.raises(ValueError, match="0..255"):
        rgb_to_hex((256, 0, 0))
    with pytest.raises(ValueError, match="red, green and blue"):
        rgb_to_hex((1, 2))
    assert colormap([ClassInfo(3, "x", "#010203")]) == {3: (1, 2, 3, 255)}


def test_csv_with_rgb_columns_without_header_and_errors(tmp_path):
    legend = tmp_path / "legend.csv"
    legend.write_text("value,name,red,green,blue\n2,farm,10,20,30\n0,unlabelled,0,0,0\n1,forest,,,\n")
    table = read_class_table(legend)
    assert list(table) == [0, 1, 2] and table[2] == ClassInfo(2, "farm", "#0a141e")
    assert table[1].color == palette_color(2)  # no colour: the palette colour of its row
    real, ignored = split_ignored(table)
    assert [c.value for c in real] == [1, 2] and ignored == {0}
    bare = tmp_path / "bare.csv"
    bare.write_text("5,water,#0000FF\n7,,\n")
    assert [(c.value, c.name, c.color) for c in read_class_table(bare).values()] == [
        (5, "water", "#0000ff"),
        (7, "class 7", palette_color(1)),
    ]
    (tmp_path / "twice.csv").write_text("value,name\n1,a\n1,b\n")
    with pytest.raises(InputError, match="lists a value twice"):
        read_class_table(tmp_path / "twice.csv")
    (tmp_path / "novalue.csv").write_text("klass,name\n1,a\n")
    with pytest.raises(InputError, match="no value column.*klass"):
        read_class_table(tmp_path / "novalue.csv")
    with pytest.raises(InputError, match="outside 0..254"):
        read_class_table([ClassInfo(300, "big")])


def test_qml_round_trip_leaves_out_nodata(tmp_path, raster_factory):
    classes = [ClassInfo(1, "forest", "#00AA00"), ClassInfo(2, "water", "#0000ff"), ClassInfo(IGNORE_INDEX, "none")]
    raster = raster_factory("classes.tif", np.array([[1, 2], [2, 1]], np.uint8))
    write_class_qml(raster.with_suffix(".qml"), classes)
    back = read_qml_classes(raster.with_suffix(".qml"))
    assert back == {1: ClassInfo(1, "forest", "#00aa00"), 2: ClassInfo(2, "water", "#0000ff")}
    assert class_table_for_raster(raster) == back
    raster.with_suffix(".qml").write_text("<not xml")
    assert class_table_for_raster(raster) == {}  # a broken style is no class table
    assert raster_colors(raster) == {}  # no GDAL colour table
