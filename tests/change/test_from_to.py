"""core.change.from_to: from-to change (hand-built and real), minimum mapping unit, transition tables, polygons."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import rasterio

from deeplandcover.core.change.cva import CvaOptions, change_vector_analysis
from deeplandcover.core.change.from_to import FromToOptions, from_to_change
from deeplandcover.core.classes import ClassInfo
from deeplandcover.core.errors import InputError, NoOverlapError
from deeplandcover.core.raster.grid import RasterGrid, pixel_area_m2

from ..helpers.change_reads import read_first_band as _read

NAMES = {
    1: ClassInfo(1, "forest", "#054907"),
    2: ClassInfo(2, "cultivated", "#ffff00"),
    3: ClassInfo(3, "water", "#069af3"),
}


def _table(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_hand_built_pair_every_transition(tmp_path, raster_factory):
    before = np.array([[1, 1, 2, 2, 3], [1, 1, 2, 2, 3], [0, 3, 3, 1, 2], [1, 2, 3, 1, 1]], dtype=np.uint8)
    after = np.array([[1, 2, 2, 3, 3], [1, 1, 1, 2, 3], [2, 3, 255, 1, 2], [3, 2, 1, 2, 1]], dtype=np.uint8)
    b = raster_factory("b.tif", before, nodata=0)
    a = raster_factory("a.tif", after, nodata=255)
    res = from_to_change(
        FromToOptions(
            b,
            a,
            tmp_path / "ft.tif",
            classes_before=NAMES,
            classes_after=NAMES,
            transition_table_path=tmp_path / "t.csv",
        )
    )
    out, _ = _read(res.output)
    valid = (before != 0) & (after != 255)
    expected = np.where(valid, (before.astype(int) - 1) * 3 + (after.astype(int) - 1) + 1, 0)
    np.testing.assert_array_equal(out, expected)
    rows = _table(tmp_path / "t.csv")
    got = {(int(r["from_value"]), int(r["to_value"])): int(r["pixels"]) for r in rows}
    want: dict = {}
    for f, t in zip(before[valid].tolist(), after[valid].tolist()):
        want[(f, t)] = want.get((f, t), 0) + 1
    assert got == want  # every transition count, zero pairs omitted
    assert sum(got.values()) == valid.sum() == 18
    r11 = next(r for r in rows if r["from_value"] == "1" and r["to_value"] == "2")
    assert r11["from_class"] == "forest" and r11["to_class"] == "cultivated"
    assert float(r11["m2"]) == pytest.approx(want[(1, 2)] * 100.0) and float(r11["ha"]) == pytest.approx(
        want[(1, 2)] / 100
    )
    n_from1 = sum(v for (f, _), v in want.items() if f == 1)
    assert float(r11["percent_of_from"]) == pytest.approx(100 * want[(1, 2)] / n_from1, abs=1e-4)
    names = {e.value: e.name for e in res.entries}
    assert names[2] == "forest -> cultivated" and names[1] == "forest (no change)"
    assert res.stats["changed_pixels"] == int((valid & (before != after)).sum())
    qml = Path(res.qml).read_text()
    assert "forest -&gt; cultivated" in qml or "forest -> cultivated" in qml
    with rasterio.open(res.output) as ds:
        assert ds.nodata == 0 and ds.colormap(1)[2][:3] == (255, 255, 0)

    only = from_to_change(
        FromToOptions(b, a, tmp_path / "changed.tif", classes_before=NAMES, classes_after=NAMES, changed_only=True)
    )
    o2, _ = _read(only.output)
    nc = only.stats["no_change_code"]
    assert nc == 10
    np.testing.assert_array_equal(o2, np.where(valid & (before == after), nc, expected))


def test_second_date_on_another_grid_is_aligned(tmp_path, raster_factory):
    rng = np.random.default_rng(0)
    before = rng.integers(1, 4, (40, 50)).astype(np.uint8)
    after = rng.integers(1, 4, (40, 50)).astype(np.uint8)
    b = raster_factory("b.tif", before)
    # the second date covers a shifted window (origin 5 px right, 3 px down) and is larger
    big = np.full((50, 60), 255, np.uint8)
    big[: 40 - 3, : 50 - 5] = after[3:, 5:]
    a = raster_factory("a.tif", big, origin=(500000.0 + 50, 5800000.0 - 30), nodata=255)
    res = from_to_change(FromToOptions(b, a, tmp_path / "ft.tif", transition_table_path=tmp_path / "t.csv"))
    out, _ = _read(res.output)
    assert (out[:3] == 0).all() and (out[:, :5] == 0).all()
    np.testing.assert_array_equal(out[3:, 5:], (before[3:, 5:].astype(int) - 1) * 3 + after[3:, 5:] - 1 + 1)


def test_minimum_mapping_unit_and_windowed_sieve_equals_whole(tmp_path, raster_factory):
    before = np.ones((12, 12), np.uint8)
    after = before.copy()
    after[1, 1] = 2  # 1-pixel change
    after[5:7, 5] = 3  # 2-pixel change
    after[9:11, 8:10] = 2  # 4-pixel change
    b, a = raster_factory("b.tif", before), raster_factory("a.tif", after)
    res = from_to_change(FromToOptions(b, a, tmp_path / "mmu.tif", mmu_px=3, changed_only=True))
    out, _ = _read(res.output)
    assert res.stats["changed_pixels"] == 4
    assert (out[9:11, 8:10] != res.stats["no_change_code"]).all() and (out == res.stats["no_change_code"]).sum() == 140

    # real-size check: block processing with a halo equals one whole-raster block
    rng = np.random.default_rng(1)
    from scipy.ndimage import zoom

    before = zoom(rng.integers(1, 5, (20, 25)), 8, order=0).astype(np.uint8)
    after = before.copy()
    noise = rng.random(before.shape) < 0.08
    after[noise] = rng.integers(1, 5, int(noise.sum()))
    b, a = raster_factory("b2.tif", before), raster_factory("a2.tif", after)
    whole = from_to_change(FromToOptions(b, a, tmp_path / "whole.tif", mmu_px=4, window_size=4096))
    tiled = from_to_change(FromToOptions(b, a, tmp_path / "tiled.tif", mmu_px=4, window_size=37))
    np.testing.assert_array_equal(_read(whole.output)[0], _read(tiled.output)[0])
    assert 0 < whole.stats["changed_pixels"] < int((before != after).sum())


def test_eolearn_transition_areas_sum_to_valid_area(tmp_path, eolearn):
    src = eolearn / "lulc_reference.tif"
    with rasterio.open(src) as ds:
        ref, prof = ds.read(1), ds.profile
    mod = ref.copy()
    mod[20:50, 30:70][mod[20:50, 30:70] == 2] = 1  # forest -> cultivated land in a block
    mod[60:, :40][mod[60:, :40] == 3] = 8  # grassland -> artificial surface
    mod[:5, :] = 0  # a strip of 'no data'
    p2 = tmp_path / "lulc_2.tif"
    with rasterio.open(p2, "w", **prof) as ds:
        ds.write(mod, 1)
    table = eolearn / "lulc_legend.csv"
    res = from_to_change(
        FromToOptions(
            src,
            p2,
            tmp_path / "ft.tif",
            classes_before=table,
            classes_after=table,
            ignore=(0, 255),
            transition_table_path=tmp_path / "t.csv",
        )
    )
    rows = _table(tmp_path / "t.csv")
    valid = (ref != 0) & (mod != 0)
    px = pixel_area_m2(RasterGrid.from_path(src))
    assert sum(int(r["pixels"]) for r in rows) == valid.sum()
    assert sum(float(r["m2"]) for r in rows) == pytest.approx(valid.sum() * px, rel=1e-6)
    for f in {r["from_value"] for r in rows}:
        assert sum(float(r["percent_of_from"]) for r in rows if r["from_value"] == f) == pytest.approx(100, abs=1e-3)
    fc = next(r for r in rows if r["from_class"] == "forest" and r["to_class"] == "cultivated land")
    assert int(fc["pixels"]) == int(((ref == 2) & (mod == 1) & valid).sum()) > 0
    assert res.stats["changed_pixels"] == int((valid & (ref != mod)).sum())


def test_from_to_bad_inputs(tmp_path, raster_factory):
    x = np.ones((10, 10), np.uint8)
    b = raster_factory("b.tif", x)
    far = raster_factory("far.tif", x, origin=(100000.0, 100000.0))
    with pytest.raises(NoOverlapError):
        from_to_change(FromToOptions(b, far, tmp_path / "o.tif"))
    assert not (tmp_path / "o.tif").exists()
    a = raster_factory("a.tif", x)
    with pytest.raises(InputError, match="disagree.*1: 'forest' vs 'water'"):
        from_to_change(
            FromToOptions(
                b,
                a,
                tmp_path / "o.tif",
                classes_before={1: ClassInfo(1, "forest")},
                classes_after={1: ClassInfo(1, "water")},
            )
        )
    qml_b, qml_a = tmp_path / "b.qml", tmp_path / "a.qml"
    for q, name in ((qml_b, "forest"), (qml_a, "Forest ")):
        q.write_text(
            f"<qgis><pipe><rasterrenderer><colorPalette><paletteEntry value='1' label='{name}' "
            "color='#00ff00'/></colorPalette></rasterrenderer></pipe></qgis>"
        )
    from_to_change(FromToOptions(b, a, tmp_path / "o.tif"))  # same names up to case/space: fine


# ------------------------------------------------------------------------ polygons and provenance
def test_change_outputs_carry_provenance_and_polygons(tmp_path, raster_factory):
    import geopandas as gpd

    from deeplandcover.core.provenance import read_provenance
    from deeplandcover.core.raster.polygons import PolygonOptions

    rng = np.random.default_rng(2)
    before = rng.integers(1, 4, (30, 40)).astype(np.uint8)
    after = before.copy()
    after[5:20, 10:30] = 3
    b = raster_factory("b.tif", before)
    a = raster_factory("a.tif", after)
    res = from_to_change(
        FromToOptions(
            b,
            a,
            tmp_path / "ft.tif",
            classes_before=NAMES,
            classes_after=NAMES,
            changed_only=True,
            polygons_path=tmp_path / "ft.gpkg",
            polygons=PolygonOptions(block_rows=4),
        )
    )
    out, _ = _read(res.output)
    gdf = gpd.read_file(res.polygons)
    assert gdf["pixels"].sum() == (out != 0).sum() and set(gdf["value"]) == set(np.unique(out)) - {0}
    names = {e.value: e.name for e in res.entries}
    assert all(names[v] == n for v, n in zip(gdf["value"], gdf["name"]))
    for path in (res.output, res.polygons):
        prov = read_provenance(path)
        assert prov["tool"] == "from_to_change" and prov["inputs"] == ["b.tif", "a.tif"] and "model" not in prov
        assert prov["parameters"]["changed_only"] is True
    d1 = rng.integers(50, 100, (2, 30, 40)).astype(np.uint16)
    d2 = d1.copy()
    d2[:, 5:15, 5:25] += 200
    cva = change_vector_analysis(
        CvaOptions(
            raster_factory("d1.tif", d1),
            raster_factory("d2.tif", d2),
            tmp_path / "cva.tif",
            magnitude_path=tmp_path / "mag.tif",
            polygons_path=tmp_path / "cva.gpkg",
        )
    )
    gdf = gpd.read_file(cva.polygons)
    assert gdf.loc[gdf["value"] == 1, "pixels"].sum() == cva.counts[1] == 200
    assert gdf.loc[gdf["value"] == 1, "area_m2"].sum() == pytest.approx(200 * 100.0)
    assert read_provenance(cva.magnitude)["tool"] == read_provenance(cva.output)["tool"] == "change_vector_analysis"
