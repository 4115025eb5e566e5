"""Train Model with architecture ``dynamicworld``: Dynamic World's body under a new head, then Classify Pixels.

The chips are generated here: 13 Sentinel-2 L1C band names in a scrambled order over a synthetic scene of
three classes (digital numbers 100-4000); the authors' checkpoint comes from ``$DLC_WEIGHTS_DIR``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from deeplandcover.core.chips.folder import load_chip_folder
from deeplandcover.core.errors import InputError, ModelFileError
from deeplandcover.core.modelcard import read_card
from deeplandcover.core.preprocessing.normalize import normalize, valid_mask
from deeplandcover.core.training import dynamicworld_encoder as dwf
from deeplandcover.core.training.config import TrainConfig
from deeplandcover.core.training.data import ChipDataset, ChipInputs
from deeplandcover.core.training.dynamicworld import CHECKPOINT_FILES
from deeplandcover.core.training.trainer import train_model
from deeplandcover.models import build_model
from deeplandcover.models import dynamicworld as dw

from ..helpers.chips import ORIGIN, PIXEL, make_chip_folder, scene

#: The chips' band order: all 13 L1C bands, scrambled (B2 spelt without the zero).
SCRAMBLED = ["B12", "B01", "B8A", "B03", "B10", "B2", "B05", "B11", "B09", "B04", "B07", "B06", "B08"]
GRID, TILE = (3, 4), 24
P0, P1 = ([p[k] for p in dw.NORM_PARAMS] for k in (0, 1))


@pytest.fixture(scope="module")
def weights_dir() -> Path:
    """The weights folder (``$DLC_WEIGHTS_DIR``, else the cache `make test` fills) holding the checkpoint."""
    from deeplandcover.core.training.weights_catalog import cache_dir

    folder = cache_dir()
    if not (folder / "dynamicworld" / "forward" / "variables" / "variables.index").is_file():
        pytest.fail(
            f"Dynamic World's checkpoint is needed in {folder}/dynamicworld/forward/variables: set DLC_WEIGHTS_DIR "
            "to a folder holding it (CI: ../shared/weights), or run `make data` on a machine with internet."
        )
    return folder


def _rename(folder: Path, names: list[str]) -> None:
    m = load_chip_folder(folder)
    stats = [dataclasses.replace(b, name=n) for b, n in zip(m.band_stats, names)]
    dataclasses.replace(m, bands=list(names), band_stats=stats).save(folder)


@pytest.fixture(scope="module")
def chips(tmp_path_factory) -> Path:
    """A 13-band chip folder (3 classes), bands named in :data:`SCRAMBLED` order."""
    folder = tmp_path_factory.mktemp("dw") / "chips"
    make_chip_folder(folder, grid=GRID, tile=TILE, bands=13, block=1, seed=3)
    _rename(folder, SCRAMBLED)
    return folder


def _scene_raster(path: Path, names: list[str]) -> Path:
    """The chips' scene as one GeoTIFF holding the bands ``names`` (of :data:`SCRAMBLED`, B2 or B02) in that order."""
    h, w = TILE * GRID[0], TILE * GRID[1]
    img = scene(h, w, 13, (1, 2, 3), 3)[0]
    data = np.stack([img[SCRAMBLED.index("B2" if n == "B02" else n)] for n in names]).astype(np.uint16)
    profile = {"driver": "GTiff", "width": w, "height": h, "count": len(names), "dtype": "uint16"}
    with rasterio.open(path, "w", crs="EPSG:32633", transform=from_origin(*ORIGIN, PIXEL, PIXEL), **profile) as ds:
        ds.write(data)
        ds.descriptions = tuple(names)
    return path


def _config(**kw) -> TrainConfig:
    base = {"architecture": "dynamicworld", "epochs": 1, "batch_size": 4, "lr": 1e-2, "seed": 1, "num_threads": 2}
    return TrainConfig(**{**base, "freeze_epochs": 1, "val_fraction": 0.25, **kw})


def _body(state: dict) -> dict[str, torch.Tensor]:
    return {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}


def _authors(weights_dir: Path) -> dict[str, torch.Tensor]:
    ref = dw.pretrained(weights_dir / "dynamicworld" / "forward" / "variables").state_dict()
    return {k: v for k, v in ref.items() if not k.startswith("head.")}


def test_fine_tune_then_classify_a_13_band_and_a_9_band_raster(chips, weights_dir, tmp_path):
    from deeplandcover.core.inference.engine import classify_pixels
    from deeplandcover.core.inference.options import ClassifyOptions

    r = train_model([chips], tmp_path / "out", _config(epochs=2))
    assert r.parity["passed"] and r.parity["shape"][1] == 9
    card = read_card(r.model_path)
    # the 9 bands in Dynamic World's order, by the chips' names; the authors' normalisation; the new classes
    assert card.architecture == "dynamicworld" and card.normalization == "dynamicworld"
    assert card.bands == ["B2", "B03", "B04", "B05", "B06", "B07", "B08", "B11", "B12"]
    assert card.mean == pytest.approx(P0) and card.std == pytest.approx(P1)
    assert [c.name for c in card.classes] == ["class1", "class2", "class3"]
    enc = card.training["encoder_weights"]
    assert enc["licence"] == "Apache-2.0" and "Brown" in enc["citation"] and enc["url"].startswith("https://")
    assert enc["files"] == {e.name.split("/")[1]: e.sha256 for e in CHECKPOINT_FILES}
    assert enc["matched_bands"][0] == ["B2", "B02"] and len(enc["matched_bands"]) == 9
    # epoch 2 trained the body; the authors' batch norm statistics were kept
    last = torch.load(r.out_dir / "last.pt", map_location="cpu", weights_only=False)["state_dict"]
    ref, body = _authors(weights_dir), _body(last)
    assert set(body) == set(ref)
    assert not torch.equal(body["stage3.main.0.conv.weight"], ref["stage3.main.0.conv.weight"])
    assert torch.equal(body["stage3.main.0.bn.running_mean"], ref["stage3.main.0.bn.running_mean"])

    # Classify Pixels picks the card's 9 bands by name from a 13-band raster (any order) and from a 9-band one
    ck = torch.load(r.checkpoint_path, map_location="cpu", weights_only=False)
    model = build_model("dynamicworld", ck["in_channels"], ck["num_classes"], **ck["arch_params"]).eval()
    model.load_state_dict(ck["state_dict"])
    maps = []
    for names in (SCRAMBLED, ["B12", "B11", "B08", "B07", "B06", "B05", "B04", "B03", "B02"]):
        src = _scene_raster(tmp_path / f"scene{len(names)}.tif", names)
        opts = ClassifyOptions(tile_size=96, overlap=0)  # one tile: the network sees the whole scene, as below
        classify_pixels([str(src)], r.model_path, tmp_path / f"map{len(names)}.tif", opts)
        with rasterio.open(tmp_path / f"map{len(names)}.tif") as ds:
            maps.append(ds.read(1))
    with rasterio.open(tmp_path / "scene13.tif") as ds:
        raw = ds.read([SCRAMBLED.index(b) + 1 for b in card.bands])
    x = normalize(raw, P0, P1, kind="dynamicworld")
    with torch.no_grad():
        pred = model(torch.from_numpy(x)[None]).argmax(1)[0].numpy()
    expected = np.asarray([c.value for c in card.classes])[pred]
    assert np.mean(maps[0] == expected) > 0.98 and np.array_equal(maps[0], maps[1])


def test_frozen_epoch_keeps_the_authors_body_and_none_starts_from_random_weights(chips, weights_dir, tmp_path):
    ref = _authors(weights_dir)
    r = train_model([chips], tmp_path / "frozen", _config())
    ck = torch.load(r.checkpoint_path, map_location="cpu", weights_only=False)["state_dict"]
    body = _body(ck)
    assert all(torch.equal(body[k], ref[k]) for k in ref)  # weights and batch norm statistics alike
    assert ck["head.weight"].shape == (3, dw.FEATURE_DIM, 1, 1)

    r = train_model([chips], tmp_path / "none", _config(encoder_weights="none"))
    card = read_card(r.model_path)
    assert "encoder_weights" not in card.training and card.normalization == "dynamicworld" and len(card.bands) == 9
    body = _body(torch.load(r.checkpoint_path, map_location="cpu", weights_only=False)["state_dict"])
    assert not torch.equal(body["stem.conv.weight"], ref["stem.conv.weight"])


def test_missing_bands_reflectances_and_options_are_refused(chips, tmp_path):
    m = load_chip_folder(chips)
    without = [b if b not in ("B11", "B08") else f"X{i}" for i, b in enumerate(m.bands)]
    with pytest.raises(InputError, match="lack B08, B11"):
        dwf.dynamicworld_manifest(dataclasses.replace(m, bands=without))
    generic = [f"B{i + 1}" for i in range(13)]  # bands without descriptions: no names to match
    with pytest.raises(InputError, match="do not name them"):
        dwf.select_dynamicworld_bands(generic)
    refl = dataclasses.replace(m, band_stats=[dataclasses.replace(b, mean=b.mean / 1e4) for b in m.band_stats])
    with pytest.raises(InputError, match="reflectances"):
        dwf.dynamicworld_manifest(refl)
    with pytest.raises(InputError, match="single-date"):
        dwf.dynamicworld_manifest(dataclasses.replace(m, kind="pair"))
    # through Train Model: a clear error before anything is written
    bad = tmp_path / "chips"
    make_chip_folder(bad, grid=(2, 2), tile=16, bands=13, block=1)
    _rename(bad, without)
    with pytest.raises(InputError, match="B08, B11"):
        train_model([bad], tmp_path / "out", _config())
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="spectral indices"):
        train_model([chips], tmp_path / "out", _config(indices="NDVI"))
    with pytest.raises(InputError, match="dynamicworld, none or a folder"):
        dwf.dynamicworld_weights(str(tmp_path / "nowhere"))


def test_missing_checkpoint_says_where_to_put_it(tmp_path, monkeypatch):
    import urllib.request

    monkeypatch.setenv("DLC_WEIGHTS_DIR", str(tmp_path))

    def offline(*a, **kw):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ModelFileError) as e:
        dwf.dynamicworld_weights("")
    assert str(tmp_path / "dynamicworld" / "forward" / "variables") in str(e.value)
    assert dwf.dynamicworld_weights("none") is None


def test_dataset_reads_the_bands_by_name_with_the_authors_normalisation(chips):
    m, note = dwf.dynamicworld_manifest(load_chip_folder(chips))
    assert m.bands[0] == "B2" and "Brown" in note
    raw_m = load_chip_folder(chips)
    inputs = ChipInputs(bands=m.bands, normalization="dynamicworld")
    ds = ChipDataset(chips, dataclasses.replace(raw_m, band_stats=m.band_stats), inputs=inputs)
    image, _ = ds.load(0)
    with rasterio.open(chips / raw_m.chips[0].image) as src:
        raw = src.read([SCRAMBLED.index(b) + 1 for b in m.bands])
    assert image.shape == (9, TILE, TILE)
    valid = valid_mask(raw, raw_m.nodata)  # the chips' nodata corner becomes 0
    assert not valid.all()
    np.testing.assert_allclose(image, normalize(raw, P0, P1, valid, kind="dynamicworld"), rtol=1e-6)


def test_classifier_encoder_freezing_and_shapes(weights_dir):
    model = build_model("dynamicworld", 9, 4)
    assert isinstance(model, dw.DynamicWorldClassifier) and isinstance(model.encoder, dw.DynamicWorldBody)
    assert model(torch.rand(2, 9, 20, 18)).shape == (2, 4, 20, 18)
    model.set_encoder_frozen(True)
    model.train()
    assert not model.encoder.stem.bn.training and model.head.weight.requires_grad
    assert not any(p.requires_grad for p in model.encoder.parameters())
    model.set_encoder_frozen(False)
    assert all(p.requires_grad for p in model.encoder.parameters()) and model.encoder.stem.bn.training
    with pytest.raises(ValueError, match="shape"):  # the authors' weights take 9 bands
        dw.load_checkpoint(build_model("dynamicworld", 13, 4).encoder, weights_dir / "dynamicworld/forward/variables")
