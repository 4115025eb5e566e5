"""The STAC Item with the Machine Learning Model extension: written by the export, valid, and a MODEL for Classify Pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch

from deeplandcover.core.classes import DEFAULT_PALETTE
from deeplandcover.core.errors import ModelFileError
from deeplandcover.core.inference.engine import classify_pixels
from deeplandcover.core.inference.options import ClassifyOptions
from deeplandcover.core.modelcard import ModelCard
from deeplandcover.core.stac import MLM_SCHEMA, item_path, mlm_item, model_from_item
from deeplandcover.core.training.onnx_export import export_onnx
from deeplandcover.models import build_model

from ..helpers.onnx_models import EXPORT_BANDS, export_card, smooth_image
from ..helpers.rasters import make_raster

BANDS = EXPORT_BANDS


def _card(**kw) -> ModelCard:
    return export_card(**{"arch_params": {"base_filters": 4, "depth": 2}, **kw})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(1)
    torch.set_num_threads(1)
    net = build_model("unet", 4, 3, base_filters=4, depth=2).eval()
    path = tmp_path_factory.mktemp("stac") / "model.onnx"
    export_onnx(net, _card(), path, torch.randn(1, 4, 64, 64))
    return path


def test_export_writes_an_mlm_item_beside_the_model(exported):
    item_file = item_path(exported)
    assert item_file.name == "model.stac-item.json" and item_file.is_file()
    item = json.loads(item_file.read_text())
    assert item["type"] == "Feature" and item["stac_version"] == "1.1.0" and MLM_SCHEMA in item["stac_extensions"]
    p = item["properties"]
    assert p["mlm:name"] == "deeplandcover-unet-model" and p["mlm:architecture"] == "unet"
    assert p["mlm:tasks"] == ["semantic-segmentation"] and p["mlm:framework"] == "ONNX"
    (inp,) = p["mlm:input"]
    assert inp["bands"] == BANDS and [b["name"] for b in item["assets"]["model"]["bands"]] == BANDS
    assert inp["input"] == {"shape": [-1, 4, 64, 64], "dim_order": ["batch", "bands", "height", "width"],
                            "data_type": "float32"}  # fmt: skip
    assert inp["value_scaling"][0] == {"type": "z-score", "mean": 100.0, "stddev": 30.0}
    (out,) = p["mlm:output"]
    assert out["result"]["shape"] == [-1, 3, 64, 64]
    assert [(c["value"], c["name"]) for c in out["classification:classes"]] == [
        (1, "class1"),
        (4, "class4"),
        (9, "class9"),
    ]
    assert out["classification:classes"][0]["color_hint"] == DEFAULT_PALETTE[0].lstrip("#").upper()
    model = item["assets"]["model"]
    assert model["href"] == "model.onnx" and model["roles"] == ["mlm:model"] and model["mlm:artifact_type"] == "onnx"
    assert model["file:size"] == exported.stat().st_size
    assert item["assets"]["deepness"]["href"] == "model_deepness.onnx"


def test_item_validates_with_the_mlm_reference_models(exported):
    """The STAC 1.1 Item JSON schema (bundled with pystac, offline) and the MLM extension's own Python models
    (stac-model, requirements-dev.txt) accept the Item."""
    stac_model = pytest.importorskip("stac_model.schema", reason="stac-model (requirements-dev.txt) not installed")
    import pystac

    item = json.loads(item_path(exported).read_text())
    assert stac_model.SCHEMA_URI == MLM_SCHEMA
    props = stac_model.MLModelProperties.model_validate(item["properties"])
    assert props.name == "deeplandcover-unet-model" and len(props.output[0].classes) == 3
    from pystac.validation import validate_dict

    assert validate_dict(item, extensions=[]) == ["https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"]
    stac_item = pystac.Item.from_dict(item)
    assert stac_model.MLModelExtension.has_extension(stac_item)
    with pytest.raises(Exception, match="architecture"):  # the validation is real: a missing field fails
        stac_model.MLModelProperties.model_validate(
            {k: v for k, v in item["properties"].items() if k != "mlm:architecture"}
        )


def test_classify_pixels_takes_the_item_as_model(exported, tmp_path):
    image = smooth_image(4, 90, 110, seed=2)
    raster = make_raster(tmp_path / "img.tif", image, descriptions=BANDS)
    a = classify_pixels([raster], exported, tmp_path / "a.tif", ClassifyOptions(threads=1))
    b = classify_pixels([raster], item_path(exported), tmp_path / "b.tif", ClassifyOptions(threads=1))
    with rasterio.open(a.output) as x, rasterio.open(b.output) as y:
        np.testing.assert_array_equal(x.read(), y.read())
        assert y.tags()["DLC_MODEL"] == "model.onnx" and x.tags()["DLC_MODEL_SHA256"] == y.tags()["DLC_MODEL_SHA256"]


def test_item_of_other_models_and_errors(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    series = mlm_item(model, _card(layout="BTCHW", time_steps=5))["properties"]["mlm:input"][0]
    assert series["input"]["shape"] == [-1, 5, 4, 64, 64] and series["input"]["dim_order"][1] == "time"
    pair = mlm_item(model, _card(task="change"))["properties"]["mlm:input"][0]
    assert pair["bands"][:2] == ["B02_date1", "B03_date1"] and len(pair["value_scaling"]) == 8
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelFileError, match="not a readable STAC Item"):
        model_from_item(bad)
    bad.write_text(json.dumps({"type": "Feature", "stac_extensions": [], "assets": {}}))
    with pytest.raises(ModelFileError, match="MLM"):
        model_from_item(bad)
    item = mlm_item(model, _card())
    item["assets"]["model"]["href"] = "https://example.org/m.onnx"
    bad.write_text(json.dumps(item))
    with pytest.raises(ModelFileError, match="not a local file"):
        model_from_item(bad)
    item["assets"]["model"]["href"] = "missing.onnx"
    bad.write_text(json.dumps(item))
    with pytest.raises(ModelFileError, match="does not exist"):
        model_from_item(bad)
