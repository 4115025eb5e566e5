"""core.chips.options: which cleaning steps an export runs, their checks, and what the manifest records."""

from __future__ import annotations

from pathlib import Path

import pytest

from deeplandcover.core.chips.options import CleaningOptions, ExportOptions
from deeplandcover.core.errors import InputError


def test_cleaning_is_off_by_default_and_any_step_enables_it():
    off = CleaningOptions()
    assert not off.enabled
    off.check("pair")  # nothing requested: fits every kind
    assert CleaningOptions(water_mask_class=0).enabled and CleaningOptions(valid_masks="m.tif").enabled
    assert CleaningOptions(cloud_policy="drop").enabled and CleaningOptions(additional_sensors=["s1.tif"]).enabled
    CleaningOptions(cloud_policy="interpolate", min_valid_coverage=0.99).check("sequence")


@pytest.mark.parametrize(
    "options, kind, message",
    [
        (CleaningOptions(cloud_policy="guess"), "single", "Unknown CLOUD_POLICY 'guess'"),
        (CleaningOptions(min_valid_coverage=1.5), "single", "MIN_VALID_COVERAGE is a share"),
        (CleaningOptions(cloud_policy="interpolate"), "single", "needs a time series"),
        (CleaningOptions(water_mask_class=3), "pair", "not on change pairs"),
        (CleaningOptions(water_mask_class=255), "single", "WATER_MASK_CLASS must be a class value 0..254"),
    ],
)
def test_cleaning_checks_name_the_parameter(options, kind, message):
    with pytest.raises(InputError, match=message):
        options.check(kind)


def test_manifest_entries_are_json_ready_text():
    opts = ExportOptions([Path("a.tif")], Path("labels.gpkg"), Path("out"), class_field="cls", aoi=Path("aoi.gpkg"))
    entries = opts.manifest_entries()
    assert entries["labels"] == "labels.gpkg" and entries["aoi"] == "aoi.gpkg" and entries["holdout"] is None
    assert entries["class_field"] == "cls" and entries["class_table"] is None
    assert entries["min_labelled_fraction"] == 0.05 and not entries["export_empty"]
    with_table = ExportOptions(["a.tif"], "l.tif", "o", class_table=Path("t.csv"))
    assert with_table.manifest_entries()["class_table"] == "t.csv"
    assert opts.tile_size == 256 and opts.stride == 128 and not opts.cleaning.enabled
