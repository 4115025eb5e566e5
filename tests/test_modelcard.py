"""core.modelcard: round trip through ONNX metadata, Deepness keys both ways."""

from __future__ import annotations

import json

import pytest

from deeplandcover.core.classes import ClassInfo
from deeplandcover.core.errors import ModelFileError
from deeplandcover.core.modelcard import CARD_KEY, ModelCard, card_from_metadata, read_card, write_card


def _card(**kw) -> ModelCard:
    base = dict(
        architecture="unet",
        bands=["B02", "B03", "B04"],
        mean=[1000.0, 1100.0, 900.0],
        std=[200.0, 210.0, 190.0],
        classes=[ClassInfo(1, "forest", "#00aa00"), ClassInfo(7, "water", "#0000ff")],
        tile_size=128,
        overlap=32,
        pixel_size=[10.0, 10.0],
    )
    base.update(kw)
    return ModelCard(**base)


def test_json_round_trip():
    card = _card(training={"val_miou": 0.5})
    back = ModelCard.from_json(card.to_json())
    assert back == card
    assert back.num_classes == 2 and back.in_channels == 3
    assert _card(task="change").in_channels == 6


def test_deepness_keys_are_equivalent_normalisation():
    md = _card().deepness_metadata()
    assert json.loads(md["model_type"]) == "Segmentor"
    assert json.loads(md["class_names"]) == {"0": "forest", "1": "water"}
    assert json.loads(md["tiles_overlap"]) == 25
    assert json.loads(md["resolution"]) == 1000
    # Deepness: (x/255 - m')/s' must equal our (x - m)/s
    m, s = json.loads(md["standardization_mean"]), json.loads(md["standardization_std"])
    x = 1234.0
    assert (x / 255 - m[0]) / s[0] == pytest.approx((x - 1000.0) / 200.0)


def test_card_from_deepness_only_metadata():
    meta = {
        "model_type": '"Segmentor"',
        "class_names": '{"0": "Coffee", "1": "Tea"}',
        "tile_size": "512",
        "tiles_overlap": "10",
        "resolution": "3",
    }
    card = card_from_metadata(meta, ["batch_size", 3, 512, 512])
    assert card.architecture == "deepness"
    assert [c.name for c in card.classes] == ["Coffee", "Tea"]
    assert card.tile_size == 512 and card.overlap == 51 and card.pixel_size == [0.03, 0.03]
    assert len(card.bands) == 3


def test_card_without_metadata_takes_deepness_defaults():
    card = card_from_metadata({}, [1, 3, 256, 256], 4)
    assert card.architecture == "deepness" and card.input_scale == pytest.approx(1 / 255)
    assert card.mean == [0.0] * 3 and card.std == [1.0] * 3  # (x / 255 - 0) / 1
    assert card.tile_size == 256 and card.overlap == round(256 * 0.15)
    assert [c.name for c in card.classes] == ["class 0", "class 1", "class 2", "class 3"]
    assumed = " ".join(card.training["assumed"])
    assert "tile 256 px from the input shape" in assumed and "/ 255" in assumed and "by output channel" in assumed
    dynamic = card_from_metadata({}, ["b", 3, "h", "w"], 2)
    assert dynamic.tile_size == 512 and "tile 512 px" in " ".join(dynamic.training["assumed"])
    full = card_from_metadata(
        {
            "model_type": '"segmentor"',
            "class_names": "{0: 'a', 1: 'b'}",
            "tile_size": "64",
            "tiles_overlap": "25",
            "standardization_mean": "[0.5]",
            "standardization_std": "[0.2]",
        },
        [1, 1, 64, 64],
    )
    assert [c.name for c in full.classes] == ["a", "b"] and "assumed" not in full.training
    assert (200 * full.input_scale - full.mean[0]) / full.std[0] == pytest.approx((200 / 255 - 0.5) / 0.2)


def test_card_errors():
    with pytest.raises(ModelFileError, match="Regressor"):
        card_from_metadata({"model_type": '"Regressor"'})
    with pytest.raises(ModelFileError, match="not valid JSON"):
        card_from_metadata({CARD_KEY: "{oops"})


def test_real_deepness_models(data_dir):
    models = data_dir / "interop" / "deepness_models" / "models"
    card = read_card(models / "two_outputs_softmax_bsx2x512x512.onnx")
    assert [c.name for c in card.classes] == ["Coffee", "Tea"]
    card = read_card(models / "one_output_sigmoid_bsx512x512.onnx")
    assert [c.name for c in card.classes] == ["Coffee"]
    card = read_card(models / "dummy_model.onnx")  # no metadata at all: Deepness's defaults
    assert card.tile_size == 512 and len(card.classes) == 3 and card.training["assumed"]


def test_write_and_read_card_in_onnx(tmp_path, data_dir):
    import shutil

    src = data_dir / "interop" / "deepness_models" / "models" / "dummy_model.onnx"
    path = tmp_path / "m.onnx"
    shutil.copy(src, path)
    card = _card()
    write_card(path, card)
    assert read_card(path) == card


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file at all")
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        read_card(bad)
    with pytest.raises(ModelFileError, match="does not exist"):
        read_card(tmp_path / "missing.onnx")
