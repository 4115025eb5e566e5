"""core.inference.model: load_model from a file, a STAC Item or a catalogue name; the InferenceModel's queries."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from deeplandcover.core.errors import InputError, ModelFileError
from deeplandcover.core.inference.bands import BandSource, plan_sources
from deeplandcover.core.inference.model import InferenceModel, load_model
from deeplandcover.core.modelcard import read_card
from deeplandcover.core.stac import write_mlm_item

from ..helpers.onnx_models import make_model

BANDS = ["blue", "green", "red", "nir"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    pytest.importorskip("onnx")
    return make_model(tmp_path_factory.mktemp("model") / "m.onnx", BANDS, 3, tile_size=64, overlap=16)


def _sources(m: InferenceModel, n_inputs: int = 1):
    return plan_sources(m.card, [Path(f"in{i}.tif") for i in range(n_inputs)], [BANDS] * n_inputs, None)


def test_load_model_from_a_path(model_path):
    m = load_model(model_path, "cpu", 1)
    assert m.path == model_path and m.card == read_card(model_path)
    assert m.provider == "CPUExecutionProvider" and m.warnings == []
    assert len(m.input_shape) == 4 and m.fixed_tile is None  # dynamic batch, height and width
    assert m.tiling(None, None, []) == (64, 16)  # the card's
    assert m.tiling(128, None, []) == (128, 32)  # the card's overlap scaled to the tile
    assert m.tiling(96, 0, []) == (96, 0)
    assert m.classes == [] and m.sample_shape is None  # known after the probe
    m.probe(_sources(m), 64, 4)
    assert m.sample_shape == (4, 64, 64) and m.run_batch == 4 and not m.sigmoid
    assert [c.value for c in m.classes] == [1, 2, 3]
    p = m.run(np.random.default_rng(0).normal(size=(5, 4, 64, 64)).astype(np.float32))
    assert p.shape == (5, 3, 64, 64) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_load_model_from_a_stac_item(model_path, tmp_path):
    local = shutil.copy(model_path, tmp_path / "m.onnx")
    item = write_mlm_item(local, read_card(local))
    m = load_model(item, "cpu", 1)
    assert m.path == Path(local) and m.card == read_card(local)


def test_load_model_from_the_catalogue_name(tmp_path_factory, monkeypatch):
    """``dynamicworld`` is made once from the authors' weights in ``$DLC_WEIGHTS_DIR`` (torch and onnx needed)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    monkeypatch.setenv("DLC_MODELS_DIR", str(tmp_path_factory.mktemp("models")))
    m = load_model("dynamicworld", "cpu", 1)
    assert m.path.name == "dynamicworld.onnx" and m.path.is_file()
    assert m.card.architecture == "dynamicworld" and len(m.card.bands) == 9 and len(m.card.classes) == 9
    assert m.card.normalization == "dynamicworld"
    assert load_model("DynamicWorld", "cpu", 1).path == m.path  # case-insensitive; made once, then reused


def test_overrides_and_the_assumed_defaults(data_dir):
    """A model without metadata: Deepness's defaults are assumed (and said); INPUT_SCALE replaces 1/255."""
    dummy = data_dir / "interop" / "deepness_models" / "models" / "dummy_model.onnx"
    m = load_model(dummy, "cpu", 1)
    (warning,) = [w for w in m.warnings if "Deepness's defaults" in w]
    assert "input / 255" in warning and m.card.input_scale == pytest.approx(1 / 255)
    assert m.fixed_tile == 512
    warnings: list[str] = []
    assert m.tiling(256, 0, warnings) == (512, 0)
    assert warnings == ["The model only accepts 512 px tiles; tile size 256 replaced by 512."]
    scaled = load_model(dummy, "cpu", 1, input_scale=0.5)
    assert scaled.card.input_scale == 0.5
    assert not any("/ 255" in w for w in scaled.warnings) and any("Deepness's defaults" in w for w in scaled.warnings)


def test_missing_and_invalid_files_give_clear_errors(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        load_model(bad)
    item = tmp_path / "item.json"
    item.write_text('{"type": "Feature", "assets": {}}', encoding="utf-8")
    with pytest.raises(ModelFileError, match="not a STAC Item with the Machine Learning Model"):
        load_model(item)


def test_bad_device_tiling_and_input_are_refused(model_path):
    with pytest.raises(InputError, match="Unknown DEVICE"):
        load_model(model_path, "tpu")
    m = load_model(model_path, "cpu", 1)
    with pytest.raises(InputError, match="smaller than the tile size"):
        m.tiling(64, 64, [])
    with pytest.raises(InputError, match="too small"):
        m.tiling(4, 0, [])
    short = BandSource(0, (1, 2), (100.0, 100.0), (30.0, 30.0))  # 2 channels for a 4-band model
    with pytest.raises(InputError, match="cannot run on input tiles of shape"):
        m.probe([short], 64, 1)
