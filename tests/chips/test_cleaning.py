"""core.chips.cleaning: NDWI masking of water labels and the choice of cleaning steps for an export's inputs."""

from __future__ import annotations

import numpy as np
import pytest

from deeplandcover.core.chips.cleaning import ChipPreprocessing, make_preprocessing, mask_inconsistent_water
from deeplandcover.core.chips.options import CleaningOptions
from deeplandcover.core.chips.sources import open_sources
from deeplandcover.core.classes import IGNORE_INDEX
from deeplandcover.core.errors import InputError
from deeplandcover.core.feedback import NullFeedback


def test_water_labels_the_ndwi_contradicts_are_masked_and_invalid_dates_ignored():
    labels = np.array([[7, 7, 1, 1, IGNORE_INDEX]], np.uint8)  # water, water, land, land, unlabelled
    ndwi = np.array([[[0.5, -0.3, 0.1, 0.6, 0.9]]], np.float32)
    out, contradicted, flipped = mask_inconsistent_water(labels, ndwi, np.ones_like(ndwi, bool), 7)
    assert out.tolist() == [[7, IGNORE_INDEX, 1, IGNORE_INDEX, IGNORE_INDEX]] and (contradicted, flipped) == (2, 0)
    two = np.concatenate([ndwi, -ndwi])  # second date: every state flips ...
    valid = np.array([np.ones(5, bool), [False, True, True, True, True]])[:, None]  # ... but pixel 0 is cloudy
    out, contradicted, flipped = mask_inconsistent_water(labels, two, valid, 7)
    assert out[0, 0] == 7 and out[0, 2] == IGNORE_INDEX and flipped >= 1
    assert labels[0, 1] == 7  # the input is not changed


def test_no_step_no_preprocessing_and_the_checks_run_first(raster_factory):
    img = raster_factory("a.tif", np.ones((2, 8, 8), np.uint16))
    src = open_sources([img], None, None, None, NullFeedback())
    assert make_preprocessing(src, CleaningOptions()) is None
    with pytest.raises(InputError, match="needs a time series"):
        make_preprocessing(src, CleaningOptions(cloud_policy="interpolate"))


def test_water_masking_finds_green_and_nir_by_name(raster_factory):
    named = raster_factory("s2.tif", np.ones((2, 8, 8), np.uint16), descriptions=["B03", "B08"])
    src = open_sources([named], None, None, None, NullFeedback())
    prep = make_preprocessing(src, CleaningOptions(water_mask_class=7))
    assert isinstance(prep, ChipPreprocessing) and src.bands == ["B03", "B08"]
    bare = raster_factory("bare.tif", np.ones((1, 8, 8), np.uint16))
    with pytest.raises(InputError):
        make_preprocessing(open_sources([bare], None, None, None, NullFeedback()), CleaningOptions(water_mask_class=7))
