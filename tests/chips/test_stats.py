"""core.chips.stats: streamed band statistics, chip totals and the pooling of several folders' statistics."""

from __future__ import annotations

import numpy as np
import pytest

from deeplandcover.core.chips.manifest import BandStats
from deeplandcover.core.chips.stats import BandAccumulator, pooled_stats


def _stats(name: str, x: np.ndarray) -> BandStats:
    return BandStats(name, float(x.min()), float(x.max()), float(x.mean()), float(x.std()), int(x.size))


def test_pooled_statistics_equal_those_of_the_pooled_pixels() -> None:
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(10, 2, 500), rng.normal(30, 5, 1500), rng.normal(-4, 1, 7)
    pooled = pooled_stats([[_stats("B1", a)], [_stats("B1", b)], [_stats("B1", c)]])
    every = np.concatenate([a, b, c])
    assert len(pooled) == 1 and pooled[0].name == "B1" and pooled[0].count == every.size
    assert pooled[0].mean == pytest.approx(every.mean(), rel=1e-12)
    assert pooled[0].std == pytest.approx(every.std(), rel=1e-12)
    assert (pooled[0].min, pooled[0].max) == (every.min(), every.max())


def test_one_folder_keeps_its_statistics_and_a_folder_without_counts_weighs_one_pixel() -> None:
    one = [BandStats("B1", 0, 9, 4.0, 2.0, 10), BandStats("B2", 1, 5, 3.0, 1.0, 10)]
    assert pooled_stats([one]) == one
    no_count = [BandStats("B1", 0, 1, 100.0, 0.0, 0)]  # an ArcGIS export may not count pixels
    got = pooled_stats([[BandStats("B1", 0, 1, 0.0, 0.0, 1)], no_count])
    assert got[0].mean == pytest.approx(50.0) and got[0].count == 2


def test_band_accumulator_merges_chunks_like_one_pass() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(100, 20, (2, 40, 40))
    valid = rng.random((40, 40)) > 0.2
    acc = BandAccumulator(2)
    for rows in (slice(0, 13), slice(13, 40)):
        acc.update_masked(data[:, rows], valid[rows])
    for i, s in enumerate(acc.result(["B1", "B2"])):
        ref = data[i][valid]
        assert s.count == ref.size and s.mean == pytest.approx(ref.mean()) and s.std == pytest.approx(ref.std())
