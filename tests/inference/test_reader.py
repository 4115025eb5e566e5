"""Classify Pixels repeats a time-series model's training cloud policy (valid-data masks + interpolation)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from deeplandcover.core.errors import InputError
from deeplandcover.core.inference.engine import classify_pixels
from deeplandcover.core.inference.options import ClassifyOptions, OutputPaths
from deeplandcover.core.modelcard import read_card, write_card

from ..helpers.onnx_models import make_series_model, smooth_image
from ..helpers.rasters import make_raster

BANDS = ["B04", "B08"]
DATES = ["2020-01-01", "2020-01-11", "2020-01-21"]


@pytest.fixture
def series(tmp_path):
    """Clean dates (date 2 = mean of dates 1 and 3), the same with a cloud on date 2, and its valid mask."""
    d1 = smooth_image(2, 96, 96, seed=1).astype(np.float32)
    d3 = smooth_image(2, 96, 96, seed=3).astype(np.float32)
    d2 = (d1 + d3) / 2  # exactly what linear interpolation in time gives at the middle date
    cloudy = d2.copy()
    cloudy[:, 20:60, 30:70] = 250.0  # bright cloud
    clean = [make_raster(tmp_path / f"clean_{d}.tif", a, descriptions=BANDS) for d, a in zip(DATES, (d1, d2, d3))]
    dirty = [make_raster(tmp_path / f"dirty_{d}.tif", a, descriptions=BANDS) for d, a in zip(DATES, (d1, cloudy, d3))]
    valid = np.ones((3, 96, 96), np.uint8)
    valid[1, 20:60, 30:70] = 0
    masks = make_raster(tmp_path / "valid.tif", valid)
    model = make_series_model(tmp_path / "series.onnx", BANDS, time_steps=3)
    card = read_card(model)
    card.training = {"preprocessing": {"cloud": {"policy": "interpolate", "min_valid_coverage": 0.0}}}
    write_card(model, card)
    return clean, dirty, masks, model


def _classify(inputs, model, out, **kw):
    """(class raster, probabilities ``(K, H, W)``)."""
    prob = out.with_name(out.stem + "_prob.tif")
    classify_pixels(inputs, model, OutputPaths(out, prob), ClassifyOptions(tile_size=64, overlap=16, **kw))
    with rasterio.open(out) as ds, rasterio.open(prob) as pds:
        return ds.read(1), pds.read()


def test_masks_and_interpolation_recover_the_clean_classification(series, tmp_path):
    clean, dirty, masks, model = series
    ref, ref_p = _classify(clean, model, tmp_path / "clean.tif")
    fixed, fixed_p = _classify(dirty, model, tmp_path / "fixed.tif", valid_masks=masks)
    raw, raw_p = _classify(dirty, model, tmp_path / "raw.tif")
    assert (fixed == ref).mean() >= 0.999
    np.testing.assert_allclose(fixed_p, ref_p, atol=1e-4)
    # without the masks the cloud changes the probabilities where it lies: the test can tell the difference
    assert np.abs(raw_p[:, 20:60, 30:70] - ref_p[:, 20:60, 30:70]).max() > 0.01


def test_policy_without_masks_warns(series, tmp_path):
    clean, dirty, masks, model = series
    notes = []

    class Fb:
        def set_progress(self, p):
            pass

        def is_canceled(self):
            return False

        def info(self, m):
            notes.append(m)

        def warning(self, m):
            notes.append("W:" + m)

    classify_pixels(dirty, model, tmp_path / "o.tif", ClassifyOptions(tile_size=64, overlap=16), feedback=Fb())
    assert any(n.startswith("W:") and "VALID_MASKS" in n for n in notes)


def test_masks_on_a_single_date_model_are_refused(tmp_path):
    from ..helpers.onnx_models import make_model

    img = make_raster(tmp_path / "a.tif", smooth_image(2, 64, 64), descriptions=BANDS)
    model = make_model(tmp_path / "m.onnx", BANDS, tile_size=64, overlap=16)
    masks = make_raster(tmp_path / "v.tif", np.ones((1, 64, 64), np.uint8))
    with pytest.raises(InputError, match="time-series models"):
        classify_pixels([img], model, tmp_path / "o.tif", ClassifyOptions(valid_masks=masks))
