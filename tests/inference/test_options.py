"""core.inference.options: the output paths of Classify Pixels, kept as Path objects and frozen."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from deeplandcover.core.inference.options import OutputPaths


def test_output_paths_are_paths_and_empty_ones_none():
    out = OutputPaths("c.tif", "", area_table="a.csv")
    assert out.classes == Path("c.tif") and out.area_table == Path("a.csv")
    assert out.probabilities is None and out.polygons is None  # "" (an empty dialog field) means: not wanted
    assert out == OutputPaths(Path("c.tif"), None, Path("a.csv"))


def test_output_paths_are_frozen():
    out = OutputPaths("c.tif")
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.classes = Path("x.tif")
