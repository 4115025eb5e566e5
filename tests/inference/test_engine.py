"""core.inference.engine (classify_pixels end to end): seamless tiling, streaming, nodata, band matching, Deepness
models, series and pairs, resampling, errors."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio

from deeplandcover.core.errors import (
    BandMismatchError,
    CanceledError,
    InputError,
    ModelFileError,
    NoOverlapError,
)
from deeplandcover.core.feedback import NullFeedback
from deeplandcover.core.inference.engine import classify_pixels
from deeplandcover.core.inference.options import ClassifyOptions, OutputPaths

from ..helpers.onnx_models import make_model, make_series_model, smooth_image
from ..helpers.rasters import make_raster

BANDS = ["blue", "green", "red", "nir"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("inference")


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return smooth_image(4, 256, 256, seed=3)


@pytest.fixture(scope="module")
def model(work: Path, image: np.ndarray) -> Path:
    """4-band conv net (receptive field 9 px), 3 classes valued 1..3, card tile 64 / overlap 16."""
    return make_model(work / "conv.onnx", BANDS, 3, layers=4, seed=3, balance_on=image, tile_size=64, overlap=16)


@pytest.fixture(scope="module")
def raster(work: Path, image: np.ndarray) -> Path:
    return make_raster(work / "img.tif", image, descriptions=BANDS)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _classify(raster: Path, model: Path, out: Path, **kw) -> np.ndarray:
    kw.setdefault("threads", 1)
    classify_pixels([raster], model, out, ClassifyOptions(**kw))
    return _read(out)


# ------------------------------------------------------------------------------- seamless
def test_seamless_blending_matches_one_big_tile(raster, model, tmp_path):
    ref = _classify(raster, model, tmp_path / "ref.tif", tile_size=256)
    assert len(np.unique(ref)) == 3, "the test model must produce a map with class boundaries"
    gauss = (_classify(raster, model, tmp_path / "g.tif", tile_size=64, overlap=16, blending="gaussian") == ref).mean()
    center = (_classify(raster, model, tmp_path / "c.tif", tile_size=64, overlap=16, blending="center") == ref).mean()
    naive = (_classify(raster, model, tmp_path / "n.tif", tile_size=64, overlap=0) == ref).mean()
    assert gauss >= 0.999 and center >= 0.999
    assert naive < 0.995 and naive < gauss and naive < center


def test_gdal_block_cache_is_megabytes_during_the_run(raster, model, tmp_path):
    """rasterio hands GDAL_CACHEMAX to GDALSetCacheMax64 in bytes: a bare 64 once gave a 64-byte cache,
    which made the reader thread evict the writer's dirty output block and lose a chunk now and then."""
    seen = []

    class Probe(NullFeedback):
        def set_progress(self, percent: float) -> None:
            seen.append(rasterio.env.getenv().get("GDAL_CACHEMAX"))

    classify_pixels([raster], model, tmp_path / "c.tif", ClassifyOptions(threads=1), feedback=Probe())
    assert seen and min(seen) >= 64 * 2**20


def test_tta_runs_and_mostly_agrees(raster, model, tmp_path):
    base = _classify(raster, model, tmp_path / "a.tif", tile_size=64, overlap=16)
    tta = _classify(raster, model, tmp_path / "t.tif", tile_size=64, overlap=16, tta=True)
    assert set(np.unique(tta)) <= {1, 2, 3}
    assert 0.5 < (tta == base).mean() < 1.0


# ----------------------------------------------------------------------------- outputs
def test_probabilities_area_table_and_style(raster, model, tmp_path):
    res = classify_pixels(
        [raster],
        model,
        OutputPaths(tmp_path / "cls.tif", probabilities=tmp_path / "p.tif", area_table=tmp_path / "a.csv"),
        ClassifyOptions(tile_size=64, overlap=16, threads=1),
    )
    cls = _read(res.output)
    with rasterio.open(res.probabilities) as ds:
        assert ds.count == 3 and ds.dtypes[0] == "float32"
        assert list(ds.descriptions) == ["class1", "class2", "class3"]
        p = ds.read()
    assert np.allclose(p.sum(0), 1.0, atol=1e-4)
    assert np.array_equal(np.array([1, 2, 3], np.uint8)[p.argmax(0)], cls)
    with rasterio.open(res.output) as ds:
        assert ds.nodata == 255 and ds.block_shapes[0] == (256, 256) and ds.compression.name.lower() == "deflate"
        assert ds.colormap(1)[1][:3] == (0x1F, 0x77, 0xB4)
    rows = _rows(res.area_table)
    assert [int(r["value"]) for r in rows] == [1, 2, 3]
    assert sum(int(r["pixels"]) for r in rows) == cls.size
    for r in rows:
        assert int(r["pixels"]) == (cls == int(r["value"])).sum()
        assert float(r["m2"]) == pytest.approx(int(r["pixels"]) * 100.0)
        assert float(r["ha"]) == pytest.approx(int(r["pixels"]) * 0.01)
    assert sum(float(r["percent"]) for r in rows) == pytest.approx(100.0, abs=1e-3)
    assert res.qml.exists() and 'type="paletted"' in res.qml.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "cls.qml", "cls.tif", "p.tif"]


def test_logits_model_gets_softmax(work, raster, tmp_path, image):
    m = make_model(work / "logits.onnx", BANDS, 3, seed=3, softmax=False, balance_on=image, tile_size=64, overlap=16)
    classify_pixels([raster], m, OutputPaths(tmp_path / "c.tif", tmp_path / "p.tif"), ClassifyOptions(threads=1))
    with rasterio.open(tmp_path / "p.tif") as ds:
        p = ds.read()
    assert p.min() >= 0 and np.allclose(p.sum(0), 1.0, atol=1e-4)


def test_nodata_and_nan_become_255(model, tmp_path, image):
    img = image.copy()
    img[:, 10:40, 20:90] = 0
    r = make_raster(tmp_path / "nd.tif", img, nodata=0, descriptions=BANDS)
    cls = _classify(r, model, tmp_path / "c.tif", tile_size=64, overlap=16)
    assert (cls[10:40, 20:90] == 255).all()
    assert (cls != 255).sum() == cls.size - 30 * 70
    f = image.astype(np.float32)
    f[1, 100:110, 100:130] = np.nan
    r2 = make_raster(tmp_path / "nan.tif", f, descriptions=BANDS)
    cls2 = _classify(r2, model, tmp_path / "c2.tif", tile_size=64, overlap=16)
    assert (cls2[100:110, 100:130] == 255).all() and (cls2 == 255).sum() == 300


def test_mask_polygon_outside_is_nodata(raster, model, tmp_path):
    from shapely.geometry import box, mapping

    with rasterio.open(raster) as ds:
        left, b, r, t = ds.bounds
    poly = mapping(box(left + 500, b + 700, left + 1500, b + 1200))  # 100 x 50 px
    cls = _classify(raster, model, tmp_path / "c.tif", mask=[poly], tile_size=64, overlap=16)
    assert (cls != 255).sum() == 100 * 50
    with pytest.raises(NoOverlapError):
        _classify(raster, model, tmp_path / "x.tif", mask=[mapping(box(0, 0, 10, 10))])


def test_extent_window_and_outside(raster, model, tmp_path):
    with rasterio.open(raster) as ds:
        left, b, r, t = ds.bounds
    res = classify_pixels(
        [raster],
        model,
        tmp_path / "e.tif",
        ClassifyOptions(extent=(left + 200, b + 300, left + 1200, b + 900), threads=1),
    )
    with rasterio.open(res.output) as ds:
        assert (ds.width, ds.height) == (100, 60)
        assert ds.transform.c == pytest.approx(left + 200) and ds.transform.f == pytest.approx(b + 900)
    with pytest.raises(NoOverlapError):
        classify_pixels([raster], model, tmp_path / "o.tif", ClassifyOptions(extent=(0, 0, 100, 100)))
    assert not (tmp_path / "o.tif").exists()


def test_raster_smaller_than_tile(model, tmp_path, image):
    r = make_raster(tmp_path / "small.tif", image[:, :40, :50], descriptions=BANDS)
    cls = _classify(r, model, tmp_path / "c.tif", tile_size=64)
    assert cls.shape == (40, 50) and (cls != 255).all()


def test_all_nodata_raster_is_an_error(model, tmp_path):
    r = make_raster(tmp_path / "empty.tif", np.zeros((4, 70, 70), np.uint16), nodata=0, descriptions=BANDS)
    with pytest.raises(InputError, match="Nothing to classify"):
        classify_pixels([r], model, tmp_path / "c.tif", ClassifyOptions(threads=1))
    assert not (tmp_path / "c.tif").exists()


def test_epsg4326_raster(model, tmp_path, image):
    r = make_raster(
        tmp_path / "geo.tif",
        image[:, :100, :100],
        crs="EPSG:4326",
        origin=(13.0, 52.0),
        pixel=0.0001,
        descriptions=BANDS,
    )
    res = classify_pixels(
        [r], model, OutputPaths(tmp_path / "c.tif", area_table=tmp_path / "a.csv"), ClassifyOptions(threads=1)
    )
    rows = _rows(res.area_table)
    m2 = sum(float(x["m2"]) for x in rows)
    assert m2 == pytest.approx(
        100 * 100 * (0.0001 * 111_195 * np.cos(np.deg2rad(51.995))) * (0.0001 * 111_195), rel=0.01
    )


# ---------------------------------------------------------------------------- bands, models
def test_bands_selected_by_name(model, raster, tmp_path, image):
    order = [3, 1, 0, 2]  # nir, green, blue, red
    r = make_raster(tmp_path / "shuffled.tif", image[order], descriptions=[BANDS[i] for i in order])
    a = _classify(raster, model, tmp_path / "a.tif")
    b = _classify(r, model, tmp_path / "b.tif")
    assert np.array_equal(a, b)
    c = _classify(r, model, tmp_path / "c.tif", band_map=[3, 2, 4, 1])  # explicit mapping, same bands
    assert np.array_equal(a, c)


def test_band_mismatch_lists_both_sides(model, tmp_path, image):
    r = make_raster(tmp_path / "x.tif", image[:3], descriptions=["red", "green", "swir"])
    with pytest.raises(BandMismatchError) as e:
        classify_pixels([r], model, tmp_path / "c.tif")
    msg = str(e.value)
    assert "['blue', 'green', 'red', 'nir']" in msg and "['red', 'green', 'swir']" in msg
    r2 = make_raster(tmp_path / "y.tif", image[:3])  # wrong count, no names
    with pytest.raises(BandMismatchError, match="3 bands"):
        classify_pixels([r2], model, tmp_path / "c.tif")
    with pytest.raises(BandMismatchError, match="Band mapping"):
        classify_pixels([r2], model, tmp_path / "c.tif", ClassifyOptions(band_map=[1, 2, 3, 4]))
    assert not (tmp_path / "c.tif").exists()


def test_corrupt_and_missing_model(raster, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        classify_pixels([raster], bad, tmp_path / "c.tif")
    with pytest.raises(ModelFileError, match="does not exist"):
        classify_pixels([raster], tmp_path / "missing.onnx", tmp_path / "c.tif")


@pytest.fixture
def deepness(data_dir, tmp_path) -> Path:
    """A copy of the Deepness test data (its GeoPackages are WAL databases: never open them in place)."""
    dst = tmp_path / "deepness"
    shutil.copytree(data_dir / "interop" / "deepness_models", dst)
    return dst


def test_model_without_metadata_runs_with_deepness_defaults(deepness, tmp_path):
    """Deepness's dummy model (no metadata, output = (input / 255) ** 8 per band) as Deepness runs it."""
    import rasterio

    raster = deepness / "test_rasters/dummy_fotomap_small.tif"
    res = classify_pixels(
        [raster], deepness / "models/dummy_model.onnx", tmp_path / "c.tif", ClassifyOptions(threads=1, overlap=0)
    )
    assert [(c.value, c.name) for c in res.classes] == [(0, "class 0"), (1, "class 1"), (2, "class 2")]
    assert res.tile_size == 512 and res.batch_size == 1
    (warning,) = [w for w in res.warnings if "Deepness's defaults" in w]
    assert "input / 255" in warning and "tile 512 px from the input shape" in warning and "INPUT_SCALE" in warning
    with rasterio.open(raster) as ds:
        rgb = ds.read([1, 2, 3])
    # (x / 255) ** 8 is monotonic: the argmax of the output is the argmax of the first three bands
    assert (_read(res.output) == np.argmax(rgb, axis=0)).mean() > 0.9999
    # INPUT_SCALE overrides the assumed / 255 (and the warning no longer lists it)
    res2 = classify_pixels(
        [raster], deepness / "models/dummy_model.onnx", tmp_path / "c2.tif", ClassifyOptions(threads=1, input_scale=0.5)
    )
    assert not any("/ 255" in w for w in res2.warnings) and any("Deepness's defaults" in w for w in res2.warnings)


def test_deepness_sigmoid_model(deepness, tmp_path):
    res = classify_pixels(
        [deepness / "test_rasters/dummy_fotomap_small.tif"],
        deepness / "models/one_output_sigmoid_bsx512x512.onnx",
        tmp_path / "c.tif",
        ClassifyOptions(threads=1),
    )
    assert [(c.value, c.name) for c in res.classes] == [(0, "background"), (1, "Coffee")]
    assert res.batch_size == 1  # the graph reshapes to a constant batch of 1
    cls = _read(res.output)
    assert cls.shape == (841, 1243) and set(np.unique(cls)) == {0, 1}


def test_deepness_softmax_model_with_mask(deepness, tmp_path):
    res = classify_pixels(
        [deepness / "test_rasters/dummy_fotomap_small.tif"],
        deepness / "models/two_outputs_softmax_bsx2x512x512.onnx",
        tmp_path / "c.tif",
        ClassifyOptions(mask=deepness / "test_rasters/dummy_fotomap_area_3857.gpkg", threads=1),
    )
    assert [c.name for c in res.classes] == ["Coffee", "Tea"] and res.tile_size == 512
    assert any("outputs" in w for w in res.warnings)
    cls = _read(res.output)
    inside = cls != 255
    assert 0.2 < inside.mean() < 0.9 and res.nodata_pixels == (~inside).sum()


# ---------------------------------------------------------------------------- series, pairs
def test_time_series_model(work, tmp_path, image):
    m = make_series_model(work / "series.onnx", BANDS, time_steps=3)
    dates = [
        make_raster(tmp_path / f"d{t}.tif", np.roll(image, 7 * t, axis=2)[:, :100, :90], descriptions=BANDS)
        for t in range(3)
    ]
    res = classify_pixels(dates, m, tmp_path / "c.tif", ClassifyOptions(threads=1))
    assert _read(res.output).shape == (100, 90)
    with pytest.raises(InputError, match="series of 3 dates"):
        classify_pixels(dates[:2], m, tmp_path / "c.tif")


def test_change_model_pair_and_composite(work, tmp_path, image):
    from deeplandcover.core.modelcard import read_card, write_card

    m = make_model(work / "change.onnx", BANDS * 2, 2, layers=2, tile_size=64, overlap=16)
    card = read_card(m)
    card.task, card.bands, card.mean, card.std = "change", BANDS, card.mean[:4], card.std[:4]
    write_card(m, card)
    d1 = make_raster(tmp_path / "t1.tif", image[:, :80, :80], descriptions=BANDS)
    d2 = make_raster(tmp_path / "t2.tif", image[:, 40:120, 40:120], descriptions=BANDS)
    comp = make_raster(tmp_path / "both.tif", np.concatenate([image[:, :80, :80], image[:, 40:120, 40:120]]))
    a = _read(classify_pixels([d1, d2], m, tmp_path / "a.tif", ClassifyOptions(threads=1)).output)
    b = _read(classify_pixels([comp], m, tmp_path / "b.tif", ClassifyOptions(threads=1)).output)
    assert np.array_equal(a, b) and set(np.unique(a)) <= {1, 2}
    with pytest.raises(InputError, match="one raster at a time"):
        classify_pixels([d1, d2], work / "conv.onnx", tmp_path / "x.tif")


# ------------------------------------------------------------------------ robustness, memory
class _CancelAfter(NullFeedback):
    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def is_canceled(self) -> bool:
        self.calls += 1
        return self.calls > self.n


def test_cancel_leaves_no_output(raster, model, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(CanceledError):
        classify_pixels(
            [raster],
            model,
            OutputPaths(out / "c.tif", out / "p.tif", out / "a.csv"),
            ClassifyOptions(tile_size=64, overlap=16, batch_size=2, threads=1),
            feedback=_CancelAfter(3),
        )
    assert list(out.iterdir()) == []


def test_peak_memory_does_not_grow_with_height(model, tmp_path):
    """Peak numpy allocation (tracemalloc) for a 12x taller raster stays within 50%, far below one full array."""
    peaks, buffers, w = [], [], 320
    for h in (256, 3072):
        img = smooth_image(4, h, w, seed=1)
        r = make_raster(tmp_path / f"h{h}.tif", img, descriptions=BANDS)
        del img
        tracemalloc.start()
        res = classify_pixels(
            [r],
            model,
            OutputPaths(tmp_path / f"c{h}.tif", tmp_path / f"p{h}.tif"),
            ClassifyOptions(tile_size=64, overlap=16, threads=1),
        )
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        buffers.append(res.buffer_bytes)
    assert peaks[1] < 1.5 * peaks[0], peaks
    assert buffers[1] < 1.5 * buffers[0] and buffers[1] < 4 * 4 * 64 * w, buffers  # < one K+1 strip of tile rows
    assert peaks[1] < 3 * 3072 * w * 4 / 2, peaks  # half of the whole probability array of the tall raster


def test_import_does_not_load_torch():
    code = "import sys, deeplandcover.core.inference.engine; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def _model_at(model: Path, path: Path, pixel: float) -> Path:
    from deeplandcover.core.modelcard import read_card, write_card

    shutil.copy(model, path)
    card = read_card(path)
    card.pixel_size = [pixel, pixel]
    write_card(path, card)
    return path


@pytest.mark.parametrize("pixel,factor", [(20.0, 2), (5.0, 0.5)])
def test_resample_to_model_pixel_size(model, tmp_path, image, pixel, factor):
    """RESAMPLE reads the raster on the model's 10 m grid (bilinear up, average down) and writes there;
    the result equals classifying a copy warped beforehand with rasterio.warp.reproject."""
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin
    from rasterio.warp import reproject

    m = _model_at(model, tmp_path / "m10.onnx", 10.0)
    src = make_raster(tmp_path / f"p{pixel:g}.tif", image[:, :96, :96], descriptions=BANDS, pixel=pixel)
    plain = classify_pixels([src], m, tmp_path / "plain.tif", ClassifyOptions(threads=1))
    assert len(plain.warnings) == 1 and "RESAMPLE" in plain.warnings[0]
    res = classify_pixels([src], m, tmp_path / "res.tif", ClassifyOptions(threads=1, resample=True))
    assert res.warnings == []
    n = int(96 * factor)
    with rasterio.open(tmp_path / "res.tif") as ds:
        assert (ds.width, ds.height) == (n, n) and ds.res == (10.0, 10.0)
        assert (ds.transform.c, ds.transform.f) == (500000.0, 5800000.0)
        got = ds.read(1)
    warped = np.zeros((4, n, n), np.float32)
    reproject(
        image[:, :96, :96].astype(np.float32),
        warped,
        src_transform=from_origin(500000, 5800000, pixel, pixel),
        dst_transform=from_origin(500000, 5800000, 10, 10),
        src_crs="EPSG:32633",
        dst_crs="EPSG:32633",
        resampling=Resampling.bilinear if factor > 1 else Resampling.average,
    )
    ref = _classify(make_raster(tmp_path / "warped.tif", warped, descriptions=BANDS), m, tmp_path / "ref.tif")
    assert (got == ref).mean() >= 0.99
    assert len(np.unique(got)) > 1


def test_resample_on_matching_grid_changes_nothing(model, tmp_path, image, raster):
    m = _model_at(model, tmp_path / "m10.onnx", 10.0)
    a = _classify(raster, m, tmp_path / "a.tif")
    b = _classify(raster, m, tmp_path / "b.tif", resample=True)
    assert np.array_equal(a, b)


def test_pixel_size_mismatch_warns(model, tmp_path, image):
    from deeplandcover.core.modelcard import read_card, write_card

    m = tmp_path / "m10.onnx"
    shutil.copy(model, m)
    card = read_card(m)
    card.pixel_size = [10.0, 10.0]
    write_card(m, card)
    ok = make_raster(tmp_path / "p10.tif", image[:, :64, :64], descriptions=BANDS, pixel=10.0)
    coarse = make_raster(tmp_path / "p30.tif", image[:, :64, :64], descriptions=BANDS, pixel=30.0)
    geo = make_raster(
        tmp_path / "geo.tif",
        image[:, :64, :64],
        descriptions=BANDS,
        crs="EPSG:4326",
        origin=(13.0, 52.0),
        pixel=0.000146,
    )  # ~10 m at 52 N
    assert classify_pixels([ok], m, tmp_path / "a.tif", ClassifyOptions(threads=1)).warnings == []
    assert classify_pixels([geo], m, tmp_path / "c.tif", ClassifyOptions(threads=1)).warnings == []
    warns = classify_pixels([coarse], m, tmp_path / "b.tif", ClassifyOptions(threads=1)).warnings
    assert len(warns) == 1 and "30 m" in warns[0] and "10 m" in warns[0]
