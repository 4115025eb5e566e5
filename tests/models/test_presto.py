"""models.presto: the authors' weights load exactly, bands are matched by name, masks hide what is missing, ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deeplandcover.models import SEQUENCE_MODELS, build_model
from deeplandcover.models.presto import (
    GROUPS,
    PRESTO_BANDS,
    PrestoClassifier,
    PrestoEncoder,
    band_slots,
    latlon_xyz,
    load_presto_encoder,
    presto_band,
    presto_scaling,
)

L1C = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
S2_GROUPS = ["S2_RGB", "S2_Red_Edge", "S2_NIR_10m", "S2_NIR_20m", "S2_SWIR", "NDVI"]


@pytest.fixture(scope="module")
def weights() -> Path:
    """The authors' file in the weights folder (``$DLC_WEIGHTS_DIR``, else the cache `make test` fills)."""
    from deeplandcover.core.training.weights_catalog import cache_dir

    path = cache_dir() / "presto" / "default_model.pt"
    if not path.is_file():
        pytest.fail(
            f"Presto's weights are needed in {path}: set DLC_WEIGHTS_DIR to a folder holding "
            "presto/default_model.pt (CI: ../shared/weights), or run `make data` on a machine with internet."
        )
    return path


def test_authors_state_dict_loads_with_no_key_missing_or_left_over(weights):
    state = torch.load(weights, map_location="cpu", weights_only=True)
    enc_keys = {k[len("encoder.") :] for k in state if k.startswith("encoder.")}
    enc = PrestoEncoder()
    assert set(enc.state_dict()) == enc_keys
    load_presto_encoder(enc, weights)
    for k, v in enc.state_dict().items():
        assert torch.equal(v, state[f"encoder.{k}"].float()), k
    # the fixed encodings we compute are the ones the authors saved
    fresh = PrestoEncoder()
    assert torch.allclose(fresh.pos_embed, state["encoder.pos_embed"], atol=1e-6)
    assert torch.allclose(fresh.month_embed.weight, state["encoder.month_embed.weight"], atol=1e-6)
    assert sum(p.numel() for p in enc.parameters()) == 404160


def test_embedding_equals_the_authors_encoder(weights):
    """Reference values from the authors' Encoder (nasaharvest/presto, run once as a dev-only check: max |diff|
    2.1e-6 over 512 random series with and without masks), S1/ERA5/SRTM/Dynamic World masked."""
    enc = PrestoEncoder().eval()
    load_presto_encoder(enc, weights)
    x = (torch.arange(2 * 3 * 17).reshape(2, 3, 17) % 97).float() / 250
    with torch.no_grad():
        e = enc(x, torch.ones(2, 3, dtype=torch.bool), torch.tensor([0, 5, 11]), latlon_xyz(45.87, 14.56), S2_GROUPS)
        again = enc(
            x, torch.ones(2, 3, dtype=torch.bool), torch.tensor([0, 5, 11]), latlon_xyz(45.87, 14.56), S2_GROUPS
        )
    ref = torch.tensor(
        [
            [-0.149574, -2.931570, 1.461278, -0.572811, -1.429805, -0.285302],
            [-0.193218, -2.171352, 0.393219, 1.244891, -0.527771, 0.873492],
        ]
    )
    assert torch.allclose(e[:, :6], ref, atol=1e-4)
    assert torch.allclose(e.norm(dim=1), torch.tensor([12.346062, 11.548483]), atol=1e-4)
    assert torch.equal(e, again)


def test_bad_weights_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_presto_encoder(PrestoEncoder(), tmp_path / "absent.pt")
    torch.save({"encoder.norm.weight": torch.ones(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not Presto's encoder"):
        load_presto_encoder(PrestoEncoder(), tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a PyTorch state dict"):
        load_presto_encoder(PrestoEncoder(), tmp_path / "junk.pt")


def test_band_names_are_matched_to_presto_channels():
    assert [presto_band(b) for b in ("B02", "b2", "band_2", "Red", "B8A", "b8a", "B11", "vv", "NDVI")] == [
        "B2", "B2", "B2", "B4", "B8A", "B8A", "B11", "VV", "NDVI"
    ]  # fmt: skip
    assert [presto_band(b) for b in ("B01", "B09", "B10", "cloud", "")] == [None] * 5
    slots = band_slots(L1C)
    assert slots == {"B2": 1, "B3": 2, "B4": 3, "B5": 4, "B6": 5, "B7": 6, "B8": 7, "B8A": 8, "B11": 11, "B12": 12}
    m = PrestoClassifier(13, 4, L1C, [6, 7])
    assert m.groups == S2_GROUPS and m.used == [1, 2, 3, 4, 5, 6, 7, 8, 11, 12]
    # Presto channel -> input channel: S1, ERA5, SRTM absent (-1), B1, B9, B10 unused
    assert m.source.tolist() == [-1, -1, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, -1, -1, -1, -1, -1]
    # any order, and other bands among them
    rgbn = PrestoClassifier(5, 2, ["nir", "NDWI", "red", "green", "blue"], [0])
    assert rgbn.groups == ["S2_RGB", "S2_NIR_10m", "NDVI"] and rgbn.used == [0, 2, 3, 4]
    assert presto_scaling(["B01", "B02", "VV", "B8A"]) == [None, (0.0, 10000.0), (-25.0, 25.0), (0.0, 10000.0)]
    assert presto_scaling(["B02", "b2"], reflectance=True) == [(0.0, 1.0), None]  # the first of a name is used


def test_constructor_errors():
    with pytest.raises(ValueError, match="Sentinel-2 band groups"):
        PrestoClassifier(3, 2, ["a", "b", "c"], [0])
    with pytest.raises(ValueError, match="band names for"):
        PrestoClassifier(3, 2, ["B02", "B03"], [0])
    with pytest.raises(ValueError, match="months 0-11"):
        PrestoClassifier(3, 2, ["B02", "B03", "B04"], [12])
    with pytest.raises(ValueError, match="1 to 24 dates"):
        PrestoClassifier(3, 2, ["B02", "B03", "B04"], [0] * 25)
    m = PrestoClassifier(3, 2, ["B02", "B03", "B04"], [0, 1])
    with pytest.raises(ValueError, match="takes 2 dates"):
        m(torch.rand(1, 3, 3, 4, 4))


@pytest.mark.parametrize(("b", "t", "k", "h", "w"), [(1, 1, 2, 5, 7), (2, 3, 5, 8, 8), (3, 5, 9, 4, 6)])
def test_shapes(b, t, k, h, w):
    m = build_model("presto", 13, k, bands=L1C, months=list(range(t)))
    out = m(torch.rand(b, t, 13, h, w) * 0.3)
    assert out.shape == (b, k, h, w) and out.dtype == torch.float32
    assert "presto" in SEQUENCE_MODELS


def test_pixels_are_classified_independently_and_in_place():
    m = PrestoClassifier(13, 3, L1C, [6, 7, 8]).eval()
    x = torch.rand(2, 3, 13, 4, 5) * 0.3
    with torch.no_grad():
        full = m(x)
        one = m(x[1:, :, :, 2:3, 4:5])
    assert torch.allclose(full[1, :, 2, 4], one[0, :, 0, 0], atol=1e-5)


def test_missing_dates_and_absent_bands_are_masked(weights):
    m = PrestoClassifier(13, 3, L1C, [6, 6, 7], weights=weights, latlon=(45.9, 14.6)).eval()
    x = torch.rand(1, 3, 13, 2, 2) * 0.3
    with torch.no_grad():
        ref = m(x)
        # bands Presto does not use (B1, B9, B10) change nothing
        y = x.clone()
        y[:, :, [0, 9, 10]] = 5.0
        assert torch.equal(m(y), ref)
        # a date whose used bands are all 0 (nodata) is masked: its other values do not matter
        z = x.clone()
        z[:, 1] = 0
        masked = m(z)
        z[:, 1, [0, 9, 10]] = 7.0
        assert torch.equal(m(z), masked) and not torch.allclose(masked, ref)
        # the same as the encoder told that the date is missing
        series, keep = m.presto_input(x)
        keep[:, 1] = False
        logits = m.head(m.encoder(series, keep, m.months, m.latlon, m.groups))
        assert torch.allclose(logits, masked.permute(0, 2, 3, 1).reshape(-1, 3), atol=1e-5)
        # a pixel without any date still gets finite logits (the location token)
        assert torch.isfinite(m(torch.zeros(1, 3, 13, 1, 1))).all()
    series, keep = m.presto_input(x)
    assert series.shape == (4, 3, len(PRESTO_BANDS)) and keep.all()
    red, nir = series[..., 4], series[..., 8]
    assert torch.allclose(series[..., 16], (nir - red) / (nir + red))
    assert (series[..., list(GROUPS["S1"]) + list(GROUPS["ERA5"]) + list(GROUPS["SRTM"])] == 0).all()


def test_freezing_keeps_fixed_and_absent_parts_frozen():
    m = PrestoClassifier(13, 3, L1C, [0])
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert "head.weight" in trainable and "encoder.blocks.0.attn.qkv.weight" in trainable
    assert "encoder.eo_patch_embed.S2_RGB.weight" in trainable
    fixed = (
        "encoder.pos_embed",
        "encoder.month_embed.weight",
        "encoder.dw_embed.weight",
        "encoder.eo_patch_embed.S1.weight",
    )
    assert not trainable & set(fixed)
    m.set_encoder_frozen(True)
    assert {n for n, p in m.named_parameters() if p.requires_grad} == {"head.weight", "head.bias"}
    m.set_encoder_frozen(False)
    assert {n for n, p in m.named_parameters() if p.requires_grad} == trainable


def test_onnx_export_matches_pytorch(weights, tmp_path):
    import onnxruntime as ort

    from deeplandcover.core.training.onnx_export import OPSET, _torch_export, check_parity

    m = PrestoClassifier(13, 4, L1C, [6, 6, 7, 7, 8], weights=weights, latlon=(45.9, 14.6)).eval()
    x = torch.rand(2, 5, 13, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.3
    x[0, 1, :, :3, :3] = 0  # a missing date in a corner
    _torch_export(m, x, tmp_path / "presto.onnx", spatial=True)
    parity = check_parity(tmp_path / "presto.onnx", m, x)
    assert parity.passed and parity.max_abs_diff < 1e-4, parity
    import onnx

    model = onnx.load(str(tmp_path / "presto.onnx"))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == OPSET
    # dynamic batch, height and width
    y = torch.rand(1, 5, 13, 11, 6, generator=torch.Generator().manual_seed(1)) * 0.3
    sess = ort.InferenceSession(str(tmp_path / "presto.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": y.numpy()})[0]
    with torch.no_grad():
        ref = torch.softmax(m(y), 1).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4)
