"""Train Model with architecture ``presto`` on the Slovenia series, then Classify Pixels with the exported model."""

from __future__ import annotations

import glob
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window, transform

from deeplandcover.core.errors import InputError, ModelFileError
from deeplandcover.core.modelcard import read_card
from deeplandcover.core.training import presto as tp
from deeplandcover.core.training.config import TrainConfig
from deeplandcover.core.training.trainer import train_model
from deeplandcover.models import build_model

CROP = Window(40, 60, 32, 32)  # 32 x 32 px of the 100 x 101 px scene: grassland, forest, shrubland, artificial


@pytest.fixture(scope="module")
def weights_dir() -> Path:
    """The weights folder (``$DLC_WEIGHTS_DIR``, else the cache `make test` fills) holding Presto's file."""
    from deeplandcover.core.training.weights_catalog import cache_dir

    folder = cache_dir()
    if not (folder / "presto" / "default_model.pt").is_file():
        pytest.fail(
            f"Presto's weights are needed in {folder}/presto: set DLC_WEIGHTS_DIR to a folder holding "
            "presto/default_model.pt (CI: ../shared/weights), or run `make data` on a machine with internet."
        )
    return folder


def _crop(src: Path, dst: Path) -> Path:
    with rasterio.open(src) as ds:
        profile = {**ds.profile, "width": CROP.width, "height": CROP.height, "transform": transform(CROP, ds.transform)}
        data, names = ds.read(window=CROP), ds.descriptions
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
        out.descriptions = names
    return dst


@pytest.fixture(scope="module")
def series(eolearn, tmp_path_factory) -> tuple[list[Path], Path]:
    """The five dated 13-band rasters (cropped) and their chips (16 px, stride 16)."""
    from deeplandcover.core.chips.export import export_training_tiles
    from deeplandcover.core.chips.options import ExportOptions

    tmp = tmp_path_factory.mktemp("presto_series")
    images = [_crop(Path(p), tmp / Path(p).name) for p in sorted(glob.glob(str(eolearn / "s2l1c_2015-*.tif")))]
    labels = _crop(eolearn / "lulc_reference.tif", tmp / "labels.tif")
    export_training_tiles(
        ExportOptions(
            images,
            labels,
            tmp / "chips",
            class_table=eolearn / "lulc_legend.csv",
            tile_size=16,
            stride=16,
            min_labelled_fraction=0.2,
            block_size=16,
        )
    )
    return images, tmp / "chips"


def test_train_presto_one_epoch_then_classify_the_series(series, weights_dir, tmp_path):
    from deeplandcover.core.inference.engine import classify_pixels
    from deeplandcover.core.inference.options import ClassifyOptions

    images, chips = series
    cfg = TrainConfig(
        architecture="presto",
        epochs=1,
        batch_size=2,
        lr=1e-2,
        freeze_epochs=1,
        seed=1,
        val_fraction=0.25,
        augment=False,
    )
    r = train_model([chips], tmp_path / "out", cfg)
    assert r.parity["passed"] and r.parity["max_abs_diff"] < 1e-4 and r.parity["shape"][1:3] == [5, 13]
    card = read_card(r.model_path)
    assert card.architecture == "presto" and card.layout == "BTCHW" and card.dates[0].startswith("2015-07-11")
    assert card.arch_params["months"] == [6, 6, 7, 7, 8]
    assert card.arch_params["bands"][:2] == ["B01", "B02"] and len(card.arch_params["bands"]) == 13
    lat, lon = card.arch_params["latlon"]
    assert 45.8 < lat < 45.95 and 14.5 < lon < 14.6
    # reflectance chips: Presto's x / 1 for the bands it uses, the data's statistics for B01, B09, B10
    b = card.bands
    assert (card.mean[b.index("B02")], card.std[b.index("B02")]) == (0.0, 1.0)
    assert card.std[b.index("B09")] != 1.0
    enc = card.training["encoder_weights"]
    assert enc["sha256"] == tp.SHA256 and enc["licence"] == "MIT" and enc["url"] == tp.URL
    assert enc["groups"] == ["S2_RGB", "S2_Red_Edge", "S2_NIR_10m", "S2_NIR_20m", "S2_SWIR", "NDVI"]
    # one frozen epoch: the encoder is still the authors', the head has trained
    ck = torch.load(r.checkpoint_path, map_location="cpu", weights_only=False)
    ref = torch.load(weights_dir / "presto" / "default_model.pt", map_location="cpu", weights_only=True)
    assert torch.equal(ck["state_dict"]["encoder.blocks.1.mlp.fc2.weight"], ref["encoder.blocks.1.mlp.fc2.weight"])

    classify_pixels([str(p) for p in images], r.model_path, tmp_path / "map.tif", ClassifyOptions())
    with rasterio.open(tmp_path / "map.tif") as ds:
        classes = ds.read(1)
    # Classify Pixels feeds the model what it trained on: the map is the PyTorch model's argmax of the series
    # scaled with the card's mean/std (the overlap blending of tiles may move a pixel near a tie)
    model = build_model("presto", ck["in_channels"], ck["num_classes"], **ck["arch_params"]).eval()
    model.load_state_dict(ck["state_dict"])
    raw = np.stack([rasterio.open(p).read() for p in images]).astype(np.float32)  # (T, C, H, W)
    x = (raw - np.float32(card.mean)[:, None, None]) / np.float32(card.std)[:, None, None]
    with torch.no_grad():
        pred = model(torch.from_numpy(x)[None]).argmax(1)[0].numpy()
    expected = np.asarray([c.value for c in card.classes])[pred]
    assert classes.shape == expected.shape and np.mean(classes == expected) > 0.98


def test_presto_weights_missing_names_dlc_weights_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DLC_WEIGHTS_DIR", str(tmp_path))

    def offline(*a, **kw):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ModelFileError, match="DLC_WEIGHTS_DIR") as e:
        tp.presto_weights("")
    assert str(tmp_path / "presto") in str(e.value) and tp.URL in str(e.value)
    assert tp.presto_weights("none") is None
    with pytest.raises(InputError, match="presto, none or an existing"):
        tp.presto_weights(str(tmp_path / "nope.pt"))


def test_presto_weights_damaged_copy_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DLC_WEIGHTS_DIR", str(tmp_path))
    (tmp_path / "presto").mkdir()
    (tmp_path / "presto" / "default_model.pt").write_bytes(b"not the weights")
    with pytest.raises(ModelFileError, match="SHA-256"):
        tp.presto_weights("presto")


def test_months_and_options_are_checked(series):
    assert tp.date_months(["2015-07-11", "2015-12-31T10:00:00", "201601"]) == [6, 11, 0]
    with pytest.raises(InputError, match="date of every time step"):
        tp.date_months(["scene_a"])
    from deeplandcover.core.chips.folder import load_chip_folder

    m = load_chip_folder(series[1])
    with pytest.raises(InputError, match="random sequences"):
        tp.presto_params(m, TrainConfig(architecture="presto", sequence_length=3, random_sequences=True), [])
    p = tp.presto_params(m, TrainConfig(architecture="presto", sequence_length=3), [])
    assert p["months"] == [6, 7, 8]  # fixed dates 0, 2, 4


def test_normalisation_in_digital_numbers_and_errors(series):
    import dataclasses

    from deeplandcover.core.chips.folder import load_chip_folder

    m = load_chip_folder(series[1])
    dn = dataclasses.replace(m, band_stats=[dataclasses.replace(b, mean=b.mean * 1e4) for b in m.band_stats])
    out, note = tp.presto_normalisation(dn)
    assert (out.band_stats[3].mean, out.band_stats[3].std) == (0.0, 10000.0) and "x / 10000" in note
    other = dataclasses.replace(m, bands=[f"layer {i}" for i in range(len(m.bands))])
    with pytest.raises(InputError, match="matches bands by name"):
        tp.presto_normalisation(other)
