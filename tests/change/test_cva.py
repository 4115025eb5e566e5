"""core.change.cva: change-vector analysis (Otsu's threshold, OSCD city pairs, bad inputs)."""

from __future__ import annotations

import numpy as np
import pytest

from deeplandcover.core.assessment.compare import binary_change_scores
from deeplandcover.core.change.cva import CvaOptions, change_vector_analysis, otsu_threshold
from deeplandcover.core.errors import BandMismatchError, InputError, NoOverlapError

from ..helpers.change_reads import read_first_band as _read


def test_otsu_on_a_bimodal_histogram():
    rng = np.random.default_rng(0)
    v = np.r_[rng.normal(1, 0.2, 5000), rng.normal(4, 0.3, 1000)]
    hist, edges = np.histogram(v, bins=256, range=(0, 6))
    t = otsu_threshold(hist, edges)
    assert 1.4 < t < 3.2 and ((v > t) == (np.arange(v.size) >= 5000)).mean() > 0.99
    # brute force over the bin edges: minimal within-class variance of the binned values (Otsu 1979)
    centers = np.repeat((edges[:-1] + edges[1:]) / 2, hist)
    within = [
        np.var(centers[centers <= e]) * (centers <= e).sum() + np.var(centers[centers > e]) * (centers > e).sum()
        for e in edges[1:-1]
        if 0 < (centers <= e).sum() < centers.size
    ]
    cands = [e for e in edges[1:-1] if 0 < (centers <= e).sum() < centers.size]
    assert t == pytest.approx(cands[int(np.argmin(within))])
    with pytest.raises(InputError):
        otsu_threshold(np.zeros(4), np.arange(5.0))


@pytest.mark.parametrize("city,d1,d2", [("bercy", "2016-11-30", "2017-08-29"), ("rennes", "2015-08-21", "2017-06-21")])
def test_cva_on_oscd_beats_trivial_baselines(tmp_path, oscd, city, d1, d2):
    folder = oscd / city
    res = change_vector_analysis(
        CvaOptions(
            folder / f"{city}_{d1}_s2l1c_13b_10m.tif",
            folder / f"{city}_{d2}_s2l1c_13b_10m.tif",
            tmp_path / "cva.tif",
            magnitude_path=tmp_path / "mag.tif",
            window_size=128,
        )
    )
    mask = folder / f"{city}_change_mask.tif"
    s = binary_change_scores(res.output, mask)
    m, _ = _read(mask)
    p = float((m == 1).mean())
    all_change_f1 = 2 * p / (1 + p)  # predicting change everywhere; all no-change has F1 0
    assert s["f1"] > 2 * all_change_f1 and s["recall"] > 0.3
    assert 0.3 < res.threshold < 8 and res.counts[1] > 0
    mag, _ = _read(res.magnitude)
    out, _ = _read(res.output)
    np.testing.assert_array_equal(out == 1, mag > res.threshold)
    # a fixed threshold is honoured, and streaming does not change the result
    fixed = change_vector_analysis(
        CvaOptions(
            folder / f"{city}_{d1}_s2l1c_13b_10m.tif",
            folder / f"{city}_{d2}_s2l1c_13b_10m.tif",
            tmp_path / "f.tif",
            threshold=res.threshold,
        )
    )
    np.testing.assert_array_equal(_read(fixed.output)[0], out)


def test_cva_bad_inputs(tmp_path, raster_factory):
    b = raster_factory("b.tif", np.ones((3, 8, 8), np.uint16))
    a = raster_factory("a.tif", np.ones((4, 8, 8), np.uint16))
    with pytest.raises(BandMismatchError, match="3 bands.*4"):
        change_vector_analysis(CvaOptions(b, a, tmp_path / "o.tif"))
    far = raster_factory("far.tif", np.ones((3, 8, 8), np.uint16), origin=(0.0, 0.0))
    with pytest.raises(NoOverlapError):
        change_vector_analysis(CvaOptions(b, far, tmp_path / "o.tif"))
    with pytest.raises(BandMismatchError, match="out of range"):
        change_vector_analysis(CvaOptions(b, b, tmp_path / "o.tif", bands=(5,)))
