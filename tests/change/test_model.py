"""core.change.model: change detection with a deep-learning model run through the inference engine."""

from __future__ import annotations

import numpy as np
import pytest

from deeplandcover.core.assessment.compare import binary_change_scores
from deeplandcover.core.change.model import ChangeModelOptions, detect_change_with_model
from deeplandcover.core.errors import BandMismatchError, InputError, NoOverlapError
from deeplandcover.core.inference.options import ClassifyOptions
from deeplandcover.core.raster.grid import RasterGrid

from ..helpers.change import diff_model as _diff_model
from ..helpers.change import on_own_grid
from ..helpers.change_reads import read_first_band as _read


def test_change_model_runs_through_the_inference_engine(tmp_path, raster_factory):
    pytest.importorskip("onnx")
    bands = ["B02", "B03"]
    rng = np.random.default_rng(5)
    d1 = rng.integers(50, 100, (2, 70, 90)).astype(np.uint16)
    d2 = d1.copy()
    d2[0, 10:30, 20:60] += 60  # a changed block on band 1
    b = raster_factory("d1.tif", d1, descriptions=bands)
    a = raster_factory("d2.tif", d2, descriptions=bands)
    model = _diff_model(tmp_path / "change.onnx", bands, "change")
    res = detect_change_with_model(
        ChangeModelOptions(
            b,
            a,
            model,
            tmp_path / "dl.tif",
            prob_path=tmp_path / "p.tif",
            classify=ClassifyOptions(tile_size=32, overlap=8, batch_size=2, device="cpu"),
        )
    )
    out, _ = _read(res.output)
    expected = (np.abs(d2[0].astype(int) - d1[0]) > 20).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    assert binary_change_scores(res.output, raster_factory("m.tif", expected))["f1"] == 1.0


def test_change_model_on_a_pair_on_two_grids(tmp_path, raster_factory):
    """Date 2 on its own grid (same bounds, 3 pixels fewer each way): resampled onto date 1's, recorded."""
    pytest.importorskip("onnx")
    bands = ["B02", "B03"]
    d1 = np.full((2, 70, 90), 80, np.uint16)
    d2 = d1.copy()
    d2[0, 10:40, 20:60] += 100  # a changed block, large enough to survive the resampling
    b = raster_factory("d1.tif", d1, descriptions=bands)
    a = on_own_grid(raster_factory("d2.tif", d2, descriptions=bands), tmp_path / "d2_grid2.tif", (3, 3), "nearest")
    model = _diff_model(tmp_path / "change.onnx", bands, "change", threshold=50.0)
    res = detect_change_with_model(
        ChangeModelOptions(b, a, model, tmp_path / "dl.tif", classify=ClassifyOptions(tile_size=32, overlap=8))
    )
    assert RasterGrid.from_path(res.output).same_as(RasterGrid.from_path(b))
    assert any("d2_grid2.tif is not on the pixel grid" in w and "resampled" in w for w in res.warnings)
    expected = np.zeros((70, 90), np.uint8)
    expected[10:40, 20:60] = 1
    assert binary_change_scores(res.output, raster_factory("m.tif", expected))["f1"] > 0.95
    far = raster_factory("far.tif", d2, descriptions=bands, origin=(900000.0, 100000.0))
    with pytest.raises(NoOverlapError):
        detect_change_with_model(ChangeModelOptions(b, far, model, tmp_path / "o.tif"))
    assert not (tmp_path / "o.tif").exists()


def test_single_date_model_given_two_dates_is_refused(tmp_path, raster_factory):
    pytest.importorskip("onnx")
    bands = ["B02", "B03"]
    x = np.ones((2, 16, 16), np.uint16)
    b = raster_factory("d1.tif", x, descriptions=bands)
    a = raster_factory("d2.tif", x, descriptions=bands)
    model = _diff_model(tmp_path / "single.onnx", bands, "segmentation")
    with pytest.raises(InputError, match="expects a single date"):
        detect_change_with_model(ChangeModelOptions(b, a, model, tmp_path / "o.tif"))
    three = raster_factory("d3.tif", np.ones((3, 16, 16), np.uint16))
    pair = _diff_model(tmp_path / "pair.onnx", bands, "change")
    with pytest.raises(BandMismatchError):
        detect_change_with_model(ChangeModelOptions(b, three, pair, tmp_path / "o.tif"))
    assert not (tmp_path / "o.tif").exists()
