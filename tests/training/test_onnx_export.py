"""Train Model's Deepness copy: loads the way Deepness loads models, and gives Classify Pixels' argmax."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deeplandcover.core.errors import ModelFileError
from deeplandcover.core.inference.engine import classify_pixels
from deeplandcover.core.inference.options import ClassifyOptions
from deeplandcover.core.modelcard import DEEPNESS_KEYS, read_card
from deeplandcover.core.training.onnx_export import deepness_path, export_deepness_onnx, export_onnx
from deeplandcover.models import build_model

from ..helpers import deepness
from ..helpers.onnx_models import EXPORT_BANDS, EXPORT_MEAN, EXPORT_STD, export_card, smooth_image

BANDS, MEAN, STD = EXPORT_BANDS, EXPORT_MEAN, EXPORT_STD


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = build_model("unet", 4, 3, base_filters=4, depth=2).eval()
    with torch.no_grad():  # a bias that spreads the argmax over the three classes
        net.head.bias.copy_(torch.tensor([0.0, 0.05, -0.05]))
    path = tmp_path_factory.mktemp("deepness") / "model.onnx"
    export_onnx(net, export_card(), path, torch.randn(2, 4, 64, 64))
    return net, path


def _ours(tmp_path, model, image, **opts):
    from ..helpers.rasters import make_raster

    raster = make_raster(tmp_path / "img.tif", image, descriptions=BANDS)
    res = classify_pixels([raster], model, tmp_path / "c.tif", ClassifyOptions(threads=1, device="cpu", **opts))
    import rasterio

    with rasterio.open(res.output) as ds:
        return ds.read(1)


def test_main_model_keeps_dynamic_size_and_carries_no_deepness_keys(exported):
    import onnx

    _, path = exported
    m = onnx.load(str(path))
    dims = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 4, "height", "width"]
    assert not {p.key for p in m.metadata_props} & set(DEEPNESS_KEYS)
    with pytest.raises(deepness.DeepnessLoadError, match="must be integers"):
        deepness.load(path)
    assert read_card(path).training["deepness_model"] == "model_deepness.onnx"


def test_deepness_copy_loads_as_in_deepness(exported):
    _, path = exported
    dp = deepness_path(path)
    assert dp.name == "model_deepness.onnx" and dp.is_file()
    dm = deepness.load(dp)
    assert dm.tile == 64 and dm.channels == 4 and dm.class_names == ["class1", "class4", "class9"]
    assert dm.seg_thresh == 0.0 and dm.small_segment == 0 and dm.overlap_pct == 25
    assert (dm.mean * 255 == pytest.approx(MEAN)) and (dm.std * 255 == pytest.approx(STD))
    batch = np.zeros((3, 64, 64, 4), np.float32)  # dynamic batch
    assert dm.process(batch).shape == (3, 64, 64)
    card = read_card(dp)  # our card is in the copy too: Classify Pixels runs it
    assert card.tile_size == 64 and card.architecture == "unet"


def test_deepness_gives_our_argmax_where_tile_grids_line_up(exported, tmp_path):
    _, path = exported
    image = smooth_image(4, 128, 192, seed=3)
    ours = _ours(tmp_path, path, image, tile_size=64, overlap=0)
    dm = deepness.load(deepness_path(path))
    idx = deepness.segment(dm, image)
    theirs = np.array([1, 4, 9])[idx]
    assert len(np.unique(ours)) >= 2  # a map with boundaries, not one class
    assert (theirs == ours).mean() == 1.0
    # Deepness's own defaults (threshold 0.5, median filter 9) do not give the argmax
    default = np.array([1, 4, 9])[deepness.segment(dm, image, seg_thresh=0.5, small_segment=9)]
    assert (default == ours).mean() < 1.0
    # and our fixed-size copy runs in Classify Pixels with the same result
    assert (_ours(tmp_path, deepness_path(path), image, tile_size=64, overlap=0) == ours).all()


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"layout": "BTCHW", "time_steps": 3}, "time series"),
        ({"task": "change"}, "two dates"),
        ({"indices": ["NDVI"]}, "spectral indices"),
        ({"training": {"sensor_bands": [["B02"], ["VV", "VH"]]}}, "several sensors"),
    ],
)
def test_models_deepness_cannot_run_carry_no_deepness_keys(kw, why, tmp_path):
    card = export_card(**kw)
    assert why in card.deepness_unsupported()
    assert card.deepness_metadata() == {}
    assert set(card.metadata_props(deepness=True)) == {"deeplandcover_model_card"}
    with pytest.raises(ModelFileError, match=why):
        export_deepness_onnx(torch.nn.Identity(), card, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_time_series_export_writes_no_deepness_copy(tmp_path):
    torch.manual_seed(0)
    net = build_model("unet_convlstm", 2, 2, base_filters=4, depth=2, hidden=8).eval()
    card = export_card(bands=["B04", "B08"], mean=[0.0, 0.0], std=[1.0, 1.0], layout="BTCHW", time_steps=3)
    card.classes = card.classes[:2]
    path = tmp_path / "model.onnx"
    export_onnx(net, card, path, torch.randn(1, 3, 2, 32, 32))
    assert path.is_file() and not deepness_path(path).exists()
    assert "deepness_model" not in read_card(path).training


def test_deepness_key_values_are_json():
    md = export_card().deepness_metadata()
    assert {k: json.loads(v) for k, v in md.items()}["seg_thresh"] == 0.0
    assert json.loads(md["seg_small_segment"]) == 0 and json.loads(md["tile_size"]) == 64
