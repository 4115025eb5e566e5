"""Pre-trained encoder weights: catalogue download (file:// URLs), band matching, normalisation, training."""

from __future__ import annotations

import hashlib
import json
import pickle

import pytest
import torch

from deeplandcover.core.errors import InputError, ModelFileError
from deeplandcover.core.modelcard import read_card
from deeplandcover.core.training import weights_catalog as wc
from deeplandcover.core.training.config import TrainConfig
from deeplandcover.core.training.pretrained import (
    adapt_first_conv,
    canonical_band,
    load_encoder_weights,
    match_bands,
    resolve_encoder_weights,
    save_encoder_weights,
    weights_normalisation,
)
from deeplandcover.core.training.trainer import train_model
from deeplandcover.models import build_model

from ..helpers.chips import make_chip_folder
from ..helpers.encoder_weights import S2, catalog_entry, weights_file
from ..helpers.feedback import RecordingFeedback


def test_band_names_match_across_spellings() -> None:
    assert [canonical_band(b) for b in ("b1", "B01", "band_1", "B8a", "Red", "blue")] == [
        "B01", "B01", "B01", "B8A", "B04", "B02",
    ]  # fmt: skip
    assert match_bands(["B4", "NDVI", "b8A", "green"], S2) == [3, None, 8, 2]
    assert match_bands(["B04", "B03", "B02"], list(wc.RGB)) == [0, 1, 2]


@pytest.fixture
def catalog(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    src, enc = weights_file(tmp_path / "src")
    monkeypatch.setitem(wc.CATALOG, "test_weights", catalog_entry(src))
    monkeypatch.setenv("DLC_WEIGHTS_DIR", str(tmp_path / "cache"))
    return src, enc


def test_catalogue_download_checks_and_caches(catalog, tmp_path) -> None:
    src, enc = catalog
    fb = RecordingFeedback()
    w = resolve_encoder_weights("test_weights", "resnet18", fb)
    cached = tmp_path / "cache" / src.name
    assert w.path == cached and cached.read_bytes() == src.read_bytes()
    assert w.sha256 == hashlib.sha256(src.read_bytes()).hexdigest() and "fc.weight" not in w.state
    assert any("Downloading" in m for m in fb.lines) and fb.progress[-1] == pytest.approx(100.0)
    src.unlink()  # the second time the cache is used, no download
    assert resolve_encoder_weights("test_weights", "resnet18").path == cached
    cached.write_bytes(cached.read_bytes()[:-10])  # damaged
    with pytest.raises(ModelFileError, match="SHA-256"):
        resolve_encoder_weights("test_weights", "resnet18")
    cached.unlink()
    with pytest.raises(ModelFileError, match=f"copy it to {cached}"):  # "offline": the URL is unreachable
        resolve_encoder_weights("test_weights", "resnet18")
    assert list((tmp_path / "cache").iterdir()) == []  # nothing half-written left


def test_resolve_errors(catalog, tmp_path) -> None:
    with pytest.raises(InputError, match="choose backbone resnet18"):
        resolve_encoder_weights("test_weights", "resnet34")
    with pytest.raises(InputError, match="ResNet encoder"):
        resolve_encoder_weights("test_weights", None)
    with pytest.raises(InputError, match="neither a catalogue name"):
        resolve_encoder_weights(str(tmp_path / "nope.pth"), "resnet18")
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"conv1.weight": object()}, protocol=2))
    with pytest.raises(ModelFileError, match="loaded safely"):
        resolve_encoder_weights(str(evil), "resnet18")
    assert resolve_encoder_weights("none", "resnet18") is None and resolve_encoder_weights("", None) is None


def test_weights_of_another_depth_are_refused(tmp_path) -> None:
    path, _ = weights_file(tmp_path, backbone="resnet34", bands=["B02", "B03", "B04"])
    w = resolve_encoder_weights(str(path), "resnet18")  # no sidecar: the file does not say
    with pytest.raises(ModelFileError, match="not a resnet18"):
        load_encoder_weights(build_model("unet", 3, 2, backbone="resnet18"), w, ["B02", "B03", "B04"])


def test_permuted_bands_with_permuted_weights_give_the_same_output(catalog) -> None:
    w = resolve_encoder_weights("test_weights", "resnet18")
    ordered = ["B02", "B03", "B04", "B08", "B11"]
    permuted = ["B11", "B04", "B02", "B08", "B03"]
    perm = [ordered.index(b) for b in permuted]
    a, b = build_model("unet", 5, 3, backbone="resnet18"), build_model("unet", 5, 3, backbone="resnet18")
    b.load_state_dict(a.state_dict())  # same decoder
    ra, rb = load_encoder_weights(a, w, ordered), load_encoder_weights(b, w, permuted)
    assert ra["initialised"] == rb["initialised"] == []
    assert torch.equal(a.encoder.conv1.weight[:, 0], w.state["conv1.weight"][:, 1])  # B02 is channel 1 of S2
    x = torch.randn(2, 5, 32, 32)
    a.eval(), b.eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x[:, perm]), rtol=1e-5, atol=1e-5)


def test_bands_the_weights_do_not_know_follow_the_scheme() -> None:
    pre = torch.randn(64, 13, 7, 7)
    fresh = torch.randn(64, 3, 7, 7)
    m = match_bands(["B04", "B08", "NDVI"], S2)
    red = adapt_first_conv(pre, m, fresh, S2, "red")
    torch.testing.assert_close(red[:, 2], pre[:, 3] * 2 / 3)  # copy of B04, whole kernel scaled by 2/3
    torch.testing.assert_close(red[:, 1], pre[:, 7] * 2 / 3)
    mean = adapt_first_conv(pre, m, fresh, S2, "mean")
    torch.testing.assert_close(mean[:, 2], pre[:, [3, 7]].mean(1) * 2 / 3)
    rnd = adapt_first_conv(pre, m, fresh, S2, "random")
    assert torch.equal(rnd[:, 2], fresh[:, 2]) and torch.equal(rnd[:, 0], pre[:, 3])


def test_normalisation_follows_the_weights_in_the_datas_units(catalog) -> None:
    w = resolve_encoder_weights("test_weights", "resnet18")
    mean, std, note = weights_normalisation(w, ["B04", "NDVI"], [1500.0, 0.3], [800.0, 0.2])
    assert (mean, std) == ([0.0, 0.3], [10000.0, 0.2]) and "digital numbers" in note
    mean, std, note = weights_normalisation(w, ["B04", "NDVI"], [0.15, 0.3], [0.08, 0.2])
    assert std == [1.0, 0.2] and "reflectance" in note


@pytest.mark.slow
def test_training_from_a_weights_file_records_it_in_the_card(tmp_path, monkeypatch) -> None:
    make_chip_folder(tmp_path / "chips", "single", grid=(4, 4), tile=16, bands=3)
    torch.manual_seed(1)
    donor = build_model("unet", 3, 2, backbone="resnet18")
    pth = save_encoder_weights(
        donor, tmp_path / "enc.pth", ["B2", "B3", "B4"], [10.0, 20.0, 30.0], [2.0, 3.0, 4.0], name="donor"
    )
    assert json.loads(pth.with_suffix(".json").read_text())["backbone"] == "resnet18"
    cfg = TrainConfig(
        epochs=3, batch_size=4, num_threads=2, lr=1e-3, backbone="resnet18", encoder_weights=str(pth),
        freeze_epochs=1,
    )  # fmt: skip
    fb = RecordingFeedback()
    bands = ["B4", "B2", "B3"]  # the chips' bands in another order than the weights'
    import dataclasses

    import deeplandcover.core.training.trainer as trainer_mod

    real = trainer_mod.load_folders

    def renamed(*a, **kw):
        loaded, merged = real(*a, **kw)
        return [(f, dataclasses.replace(m, bands=bands)) for f, m in loaded], dataclasses.replace(merged, bands=bands)

    monkeypatch.setattr(trainer_mod, "load_folders", renamed)
    r = train_model([tmp_path / "chips"], tmp_path / "out", cfg, fb)
    card = read_card(r.model_path)
    info = card.training["encoder_weights"]
    assert info["name"] == "donor" and info["sha256"] == hashlib.sha256(pth.read_bytes()).hexdigest()
    assert info["matched_bands"] == [["B4", "B4"], ["B2", "B2"], ["B3", "B3"]]
    assert card.mean == [30.0, 10.0, 20.0] and card.std == [4.0, 2.0, 3.0]  # the weights', in the chips' order
    assert any("frozen" in m for m in fb.lines) and any("unfrozen" in m for m in fb.lines)
    assert card.arch_params == {"backbone": "resnet18"}


def test_weights_with_other_layer_shapes_are_refused(tmp_path) -> None:
    path, _ = weights_file(tmp_path, backbone="resnet50", bands=["B02", "B03", "B04"])
    state = {k: v for k, v in torch.load(path, weights_only=True).items() if not k.startswith("layer4.2")}
    torch.save(state, path)  # a ResNet-50 without its last block: shapes of resnet34's keys differ
    w = resolve_encoder_weights(str(path), "resnet34")
    with pytest.raises(ModelFileError, match="does not fit a resnet34 encoder|not a resnet34"):
        load_encoder_weights(build_model("unet", 3, 2, backbone="resnet34"), w, ["B02", "B03", "B04"])


def test_a_resumed_run_after_the_frozen_epochs_keeps_small_batch_batchnorm_fixed() -> None:
    from deeplandcover.core.training.encoder_schedule import EncoderSchedule

    model = build_model("unet", 3, 2, backbone="resnet18")
    ft = EncoderSchedule(None, TrainConfig(freeze_epochs=2), ["B1", "B2", "B3"], "")
    fb = RecordingFeedback()
    assert ft.at_epoch(model, 6, 4, fb) is True  # first epoch of a run resumed after epoch 5, batch 4
    model.train()
    assert not model.encoder.bn1.training and model.encoder.conv1.weight.requires_grad
    assert ft.at_epoch(model, 7, 4, fb) is False and not any("unfrozen" in m for m in fb.lines)
