"""Cloud-aware time series (core/timeseries.py) and its Export Training Tiles options, on eolearn_slovenia_s2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from deeplandcover.core.chips.export import export_training_tiles
from deeplandcover.core.chips.options import CleaningOptions, ExportOptions
from deeplandcover.core.errors import InputError
from deeplandcover.core.preprocessing.timeseries import (
    DateMasks,
    apply_policy,
    chip_coverage,
    date_offsets,
    interpolate_invalid,
    match_bands,
)
from deeplandcover.core.raster.grid import RasterGrid

DATES = ["2015-07-11", "2015-07-31", "2015-08-20", "2015-08-30", "2015-09-09"]


def _scenes(eolearn):
    return [eolearn / f"s2l1c_{d}.tif" for d in DATES]


def test_interpolation_on_real_68_date_ndvi(eolearn) -> None:
    """Masked pixels get values between their neighbouring valid observations; valid pixels are unchanged."""
    with rasterio.open(eolearn / "ndvi_timeseries.tif") as ds:
        ndvi, times = ds.read(window=Window(0, 0, 40, 40)), date_offsets(ds.descriptions)
    with rasterio.open(eolearn / "valid_mask_timeseries.tif") as ds:
        valid = ds.read(window=Window(0, 0, 40, 40)) > 0
    assert 0.2 < valid.mean() < 0.9  # real cloud gaps
    out, ok = interpolate_invalid(ndvi[:, None], valid, times)
    out = out[:, 0]
    assert ok.all()
    np.testing.assert_array_equal(out[valid], ndvi[valid])
    t_idx, r, c = np.nonzero(~valid)
    checked = 0
    for t, y, x in zip(t_idx[::97], r[::97], c[::97]):
        vt = np.nonzero(valid[:, y, x])[0]
        before, after = vt[vt < t], vt[vt > t]
        if len(before) and len(after):
            lo, hi = ndvi[before[-1], y, x], ndvi[after[0], y, x]
            assert min(lo, hi) - 1e-6 <= out[t, y, x] <= max(lo, hi) + 1e-6
            want = np.interp(times[t], times[vt], ndvi[vt, y, x])
            assert out[t, y, x] == pytest.approx(want, abs=1e-5)
            checked += 1
        elif len(after):
            assert out[t, y, x] == ndvi[after[0], y, x]
    assert checked > 100


def test_interpolation_without_any_valid_and_resampling() -> None:
    data = np.arange(3 * 1 * 1 * 2, dtype=np.float32).reshape(3, 1, 1, 2)
    valid = np.array([[[True, False]], [[False, False]], [[True, False]]])
    out, ok = interpolate_invalid(data, valid, [0.0, 1.0, 4.0], target_times=[2.0])
    assert ok.shape == (1, 1, 2) and ok[0, 0, 0] and not ok[0, 0, 1]
    assert out[0, 0, 0, 0] == pytest.approx(0 + (4 - 0) * 0.5)  # between t=0 (0) and t=4 (4)
    assert out[0, 0, 0, 1] == 0
    with pytest.raises(InputError):
        interpolate_invalid(data, valid, [0.0, 2.0, 1.0])


def test_apply_policy_drop_and_none() -> None:
    data = np.ones((3, 2, 4, 4), np.float32)
    valid = np.ones((3, 4, 4), bool)
    valid[1, :3] = False  # coverage 0.25
    res = apply_policy(data, valid, [0, 1, 2], "drop", 0.5)
    assert res.dropped == [1] and not res.valid[1].any()
    np.testing.assert_allclose(res.coverage, [1.0, 0.25, 1.0])
    res = apply_policy(data, valid, [0, 1, 2], "none", 0.5)
    assert res.dropped == [] and res.valid[1].sum() == 4
    np.testing.assert_allclose(chip_coverage(valid), [1, 0.25, 1])
    with pytest.raises(InputError):
        apply_policy(data, valid, [0, 1, 2], "fill", 0.5)


def test_mask_bands_matched_by_date(eolearn) -> None:
    with rasterio.open(eolearn / "valid_mask_timeseries.tif") as ds:
        desc = list(ds.descriptions)
    assert match_bands(68, desc, DATES, "m") == [1, 2, 3, 4, 5]
    assert match_bands(68, desc, ["2015-09-09", "2015-12-08"], "m") == [5, 8]  # first of two on 2015-12-08
    assert match_bands(3, [None] * 3, ["a", "b", "c"], "m") == [1, 2, 3]
    with pytest.raises(InputError, match="one band per input date"):
        match_bands(68, desc, ["2014-01-01"], "m")


def test_mask_kinds_agree_on_real_masks(eolearn) -> None:
    """valid mask (IS_VALID) vs cloud mask (CLM) vs cloud probability (CLP >= 0.5) on the same dates."""
    grid = RasterGrid.from_path(eolearn / "s2l1c_2015-07-11.tif")
    dates = ["2015-07-11", "2015-07-31", "2015-09-19"]
    win = Window(0, 0, 100, 101)
    with DateMasks(eolearn / "valid_mask_timeseries.tif", grid, dates, "valid") as m:
        valid = m.read(win)
    with DateMasks(eolearn / "cloud_mask_timeseries.tif", grid, dates, "cloud") as m:
        clear = m.read(win)
    with DateMasks(eolearn / "cloud_probability_timeseries.tif", grid, dates, "probability", 0.5) as m:
        lowprob = m.read(win)
    assert valid.shape == (3, 101, 100)
    np.testing.assert_allclose(valid.mean(axis=(1, 2))[:2], [1.0, 0.0])
    np.testing.assert_array_equal(valid, clear)  # IS_DATA is all 1 here, so IS_VALID = not CLM
    assert (lowprob == clear).mean() > 0.9


@pytest.fixture(scope="module")
def drop_folder(tmp_path_factory, eolearn):
    out = tmp_path_factory.mktemp("drop") / "chips"
    export_training_tiles(
        ExportOptions(
            _scenes(eolearn),
            eolearn / "lulc_reference.tif",
            out,
            tile_size=48,
            stride=48,
            cleaning=CleaningOptions(
                valid_masks=eolearn / "valid_mask_timeseries.tif", cloud_policy="drop", min_valid_coverage=0.99
            ),
        )
    )
    return out


def test_export_drop_policy_records_and_blanks_cloudy_dates(drop_folder) -> None:
    m = json.loads((drop_folder / "manifest.json").read_text())
    cloud = m["sources"]["preprocessing"]["cloud"]
    assert cloud["policy"] == "drop" and cloud["min_valid_coverage"] == 0.99 and cloud["mask_bands"] == [1, 2, 3, 4, 5]
    assert cloud["mean_coverage_per_date"] == [1.0, 0.0, 0.0, 1.0, 1.0]
    assert all(v == ["2015-07-31", "2015-08-20"] for v in cloud["dropped_dates"].values())
    assert m["nodata"] == -9999.0 and m["time_steps"] == DATES
    chip = m["chips"][0]
    with rasterio.open(drop_folder / chip["image"]) as ds:
        x = ds.read()
    assert x.shape[0] == 5 * 13
    assert (x[13:39] == -9999.0).all() and (x[:13] != -9999.0).all()  # dates 2 and 3 dropped, date 1 kept


def test_export_interpolate_fills_cloudy_dates(tmp_path, eolearn) -> None:
    out = tmp_path / "interp"
    m = export_training_tiles(
        ExportOptions(
            _scenes(eolearn),
            eolearn / "lulc_reference.tif",
            out,
            tile_size=48,
            stride=48,
            cleaning=CleaningOptions(
                valid_masks=eolearn / "valid_mask_timeseries.tif", cloud_policy="interpolate", min_valid_coverage=0.5
            ),
        )
    )
    cloud = m.sources["preprocessing"]["cloud"]
    assert cloud["policy"] == "interpolate" and cloud["pixels_interpolated"] == 2 * 48 * 48 * len(m.chips)
    chip = m.chips[0]
    with rasterio.open(out / chip.image) as ds:
        x = ds.read().reshape(5, 13, 48, 48)
    t = date_offsets(DATES)
    w = (t[1] - t[0]) / (t[3] - t[0])
    np.testing.assert_allclose(x[1], x[0] + w * (x[3] - x[0]), atol=1e-6)
    with rasterio.open(_scenes(eolearn)[3]) as ds:
        orig = ds.read(window=Window(*chip.window))
    np.testing.assert_array_equal(x[3], orig)  # valid dates untouched


def test_single_image_drop_skips_low_coverage_chips(tmp_path, eolearn, raster_factory) -> None:
    with rasterio.open(eolearn / "valid_mask_timeseries.tif") as ds:
        mask = ds.read(1)
        prof = ds.profile
    mask[:40] = 0  # the north is "cloudy": chips of row 0 have no data, those of row 25 a coverage of 0.4
    prof.update(count=1)
    with rasterio.open(tmp_path / "m.tif", "w", **prof) as ds:
        ds.write(mask, 1)
    m = export_training_tiles(
        ExportOptions(
            [eolearn / "s2l1c_2015-07-11.tif"],
            eolearn / "lulc_reference.tif",
            tmp_path / "c",
            tile_size=25,
            stride=25,
            cleaning=CleaningOptions(valid_masks=tmp_path / "m.tif", cloud_policy="drop", min_valid_coverage=0.9),
        )
    )
    assert m.sources["preprocessing"]["cloud"]["chips_skipped_low_coverage"] == 4
    assert m.sources["skipped_no_data"] == 4
    assert all(c.window[1] >= 50 for c in m.chips)
    with pytest.raises(InputError, match="time series"):
        export_training_tiles(
            ExportOptions(
                [eolearn / "s2l1c_2015-07-11.tif"],
                eolearn / "lulc_reference.tif",
                tmp_path / "d",
                tile_size=25,
                stride=25,
                cleaning=CleaningOptions(cloud_policy="interpolate"),
            )
        )
