"""core.stac: the STAC MLM Item of a model and the model file named by an Item."""

from __future__ import annotations

import json

import pytest

from deeplandcover.core.errors import ModelFileError
from deeplandcover.core.modelcard import ModelCard
from deeplandcover.core.stac import MLM_SCHEMA, is_item, item_path, mlm_item, model_from_item, write_mlm_item

from .helpers.onnx_models import make_card


def _card(**kw) -> ModelCard:
    """A 2-band (B04, B08), 2-class card of 64 px tiles; ``kw`` overrides."""
    return make_card(["B04", "B08"], 2, mean=[1000.0, 2000.0], std=[100.0, 200.0], tile_size=64, overlap=16, **kw)


def test_item_describes_bands_shape_scaling_and_the_asset(tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"x" * 123)
    item = mlm_item(model, _card())
    props = item["properties"]
    assert MLM_SCHEMA in item["stac_extensions"] and item["geometry"] is None
    assert props["mlm:architecture"] == "testconv" and props["mlm:tasks"] == ["semantic-segmentation"]
    entry = props["mlm:input"][0]
    assert entry["bands"] == ["B04", "B08"] and entry["input"]["shape"] == [-1, 2, 64, 64]
    assert entry["value_scaling"][1] == {"type": "z-score", "mean": 2000.0, "stddev": 200.0}
    asset = item["assets"]["model"]
    assert asset["href"] == "model.onnx" and asset["file:size"] == 123 and "mlm:model" in asset["roles"]
    change = mlm_item(model, _card(task="change"))["properties"]["mlm:input"][0]
    assert change["bands"] == ["B04_date1", "B08_date1", "B04_date2", "B08_date2"]
    assert change["input"]["shape"] == [-1, 4, 64, 64]


def test_written_item_leads_back_to_the_model(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    path = write_mlm_item(model, _card())
    assert path == item_path(model) == tmp_path / "m.stac-item.json" and is_item(path) and not is_item(model)
    assert model_from_item(path) == model.resolve()
    moved = write_mlm_item(model, _card(), tmp_path / "items" / "it.json")
    assert json.loads(moved.read_text())["assets"]["model"]["href"] == "../m.onnx"
    assert model_from_item(moved) == model.resolve()


def test_items_that_name_no_usable_model(tmp_path):
    def item(**kw):
        p = tmp_path / "i.json"
        p.write_text(json.dumps({"stac_extensions": [MLM_SCHEMA], "assets": {}, **kw}))
        return p

    (tmp_path / "broken.json").write_text("{oops")
    with pytest.raises(ModelFileError, match="not a readable STAC Item"):
        model_from_item(tmp_path / "broken.json")
    with pytest.raises(ModelFileError, match="no asset with the role"):
        model_from_item(item())
    with pytest.raises(ModelFileError, match="not a local file"):
        model_from_item(item(assets={"m": {"href": "https://x.example/m.onnx", "roles": ["mlm:model"]}}))
    with pytest.raises(ModelFileError, match="does not exist"):
        model_from_item(item(assets={"m": {"href": "gone.onnx", "roles": ["mlm:model"]}}))
    (tmp_path / "i2.json").write_text(json.dumps({"stac_extensions": [], "assets": {}}))
    with pytest.raises(ModelFileError, match="Machine Learning Model"):
        model_from_item(tmp_path / "i2.json")
