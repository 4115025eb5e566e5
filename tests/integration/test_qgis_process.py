"""End-to-end smoke test of the real qgis_process.bin in a temporary profile."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ..helpers.qgis_env import QGIS_PROCESS, run_qgis_process

pytestmark = [
    pytest.mark.qgis_process,
    pytest.mark.skipif(shutil.which(QGIS_PROCESS) is None, reason="qgis_process.bin not installed"),
]


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    cfg = tmp_path_factory.mktemp("qgis_profile")
    res = run_qgis_process(["plugins", "enable", "deeplandcover"], cfg)
    assert res.returncode == 0, res.stdout + res.stderr
    return cfg


def test_list_shows_provider_and_algorithms(profile):
    res = run_qgis_process(["list"], profile)
    assert res.returncode == 0, res.stderr
    assert "Deep Land Cover" in res.stdout
    for alg in ("exporttrainingtiles", "trainmodel", "classifypixels", "detectchange", "computeaccuracy"):
        assert f"deeplandcover:{alg}" in res.stdout, f"{alg} missing from qgis_process list:\n{res.stdout[-3000:]}"


def test_help_classifypixels(profile):
    res = run_qgis_process(["help", "deeplandcover:classifypixels"], profile)
    assert res.returncode == 0, res.stderr
    assert "Classify Pixels" in res.stdout
    assert "MODEL" in res.stdout and "INPUT" in res.stdout


def test_packaged_zip_installs_and_loads(tmp_path):
    """`make package` output, unzipped into a fresh profile as Plugins > Install from ZIP does, loads."""
    import subprocess
    import zipfile

    from ..helpers.qgis_env import REPO

    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    res = subprocess.run(["make", "-s", "package"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    with zipfile.ZipFile(REPO / "dist" / "deeplandcover.zip") as zf:
        names = zf.namelist()
        assert all(n.startswith("deeplandcover/") for n in names)
        assert "deeplandcover/metadata.txt" in names and "deeplandcover/__init__.py" in names
        assert not any("__pycache__" in n or n.startswith("deeplandcover/tests/") for n in names)
        plugins = tmp_path / "profiles" / "default" / "python" / "plugins"
        plugins.mkdir(parents=True)
        zf.extractall(plugins)
    assert run_qgis_process(["plugins", "enable", "deeplandcover"], tmp_path).returncode == 0
    res = run_qgis_process(["list"], tmp_path)
    assert res.returncode == 0 and "deeplandcover:classifypixels" in res.stdout, res.stdout[-2000:] + res.stderr


def test_vector_labels_run_and_exit_cleanly(profile, eolearn, tmp_path):
    """A vector-label export through qgis_process exits 0 (no PROJ clash on exit) and writes the manifest."""
    out = tmp_path / "chips"
    res = run_qgis_process(
        [
            "run",
            "deeplandcover:exporttrainingtiles",
            "--",
            f"INPUT={eolearn / 's2l1c_2015-07-11.tif'}",
            f"LABELS={eolearn / 'lulc_polygons.gpkg'}",
            "CLASS_FIELD=LULC_ID",
            "TILE_SIZE=32",
            "STRIDE=32",
            f"OUTPUT_FOLDER={out}",
        ],
        profile,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert (out / "manifest.json").exists()


def test_resnet_unet_with_encoder_weights_trains_and_classifies(profile, tmp_path):
    """trainmodel ARCHITECTURE=unet BACKBONE=resnet34 ENCODER_WEIGHTS=<file>, then classifypixels with the model."""
    import rasterio
    import torch

    from deeplandcover.core.modelcard import read_card
    from deeplandcover.core.training.pretrained import save_encoder_weights
    from deeplandcover.models import BACKBONES, build_model

    from ..helpers.chips import make_chip_folder

    make_chip_folder(tmp_path / "chips", "single", grid=(4, 4), tile=32, bands=3)
    torch.manual_seed(0)
    weights = save_encoder_weights(  # the weights' bands in another order than the chips' B1, B2, B3
        build_model("unet", 3, 2, backbone="resnet34"), tmp_path / "enc.pth", ["B3", "B1", "B2"], [5.0] * 3, [2.0] * 3
    )
    out = tmp_path / "run"
    res = run_qgis_process(
        [
            "run",
            "deeplandcover:trainmodel",
            "--",
            f"INPUT={tmp_path / 'chips'}",
            "ARCHITECTURE=0",
            f"BACKBONE={BACKBONES.index('resnet34')}",
            f"ENCODER_WEIGHTS={weights}",
            "FREEZE_EPOCHS=1",
            "EPOCHS=2",
            "BATCH_SIZE=4",
            "LEARNING_RATE=0.001",
            f"OUTPUT_FOLDER={out}",
        ],
        profile,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    card = read_card(out / "model.onnx")
    assert card.arch_params == {"backbone": "resnet34"}
    assert card.training["encoder_weights"]["matched_bands"] == [["B1", "B1"], ["B2", "B2"], ["B3", "B3"]]
    assert card.mean == [5.0] * 3 and card.std == [2.0] * 3
    res = run_qgis_process(
        [
            "run",
            "deeplandcover:classifypixels",
            "--",
            f"INPUT={tmp_path / 'chips' / 'images' / '000000005.tif'}",
            f"MODEL={out / 'model.onnx'}",
            f"OUTPUT={tmp_path / 'classes.tif'}",
        ],
        profile,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    with rasterio.open(tmp_path / "classes.tif") as src:
        assert set(src.read(1).ravel().tolist()) <= {1, 2, 3, src.nodata}


def test_change_model_on_a_pair_on_two_grids(profile, oscd, tmp_path):
    """Detect Change (trained-model method) through qgis_process on a pair whose second date lies on its
    own grid (same bounds, a few pixels fewer, as OSCD delivers abudhabi): output on the first date's grid."""
    pytest.importorskip("onnx")
    import rasterio

    from ..helpers.change import diff_model, on_own_grid

    d = oscd / "rennes"
    first, second = d / "rennes_2015-08-21_s2l1c_13b_10m.tif", d / "rennes_2017-06-21_s2l1c_13b_10m.tif"
    moved = on_own_grid(second, tmp_path / "rennes_2017-06-21_own_grid.tif", (3, 4))
    with rasterio.open(second) as ds:
        bands = list(ds.descriptions)
    model = diff_model(tmp_path / "change.onnx", bands, "change", threshold=400.0)
    res = run_qgis_process(
        [
            "run",
            "deeplandcover:detectchange",
            "--",
            "MODE=1",
            f"INPUT={first}",
            f"INPUT2={moved}",
            f"MODEL={model}",
            f"OUTPUT={tmp_path / 'change.tif'}",
        ],
        profile,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resampled onto that grid" in res.stdout + res.stderr
    with rasterio.open(tmp_path / "change.tif") as out, rasterio.open(first) as ref:
        assert (out.width, out.height, out.transform) == (ref.width, ref.height, ref.transform)
        assert set(np.unique(out.read(1)).tolist()) <= {0, 1, 255}
