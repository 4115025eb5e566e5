"""The graphical-modeler model resources/models/landcover_workflow.model3, run by qgis_process on real data."""

from __future__ import annotations

import shutil

import pytest
from helpers.qgis_env import QGIS_PROCESS, REPO, run_qgis_process

MODEL = REPO / "resources" / "models" / "landcover_workflow.model3"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.qgis_process,
    pytest.mark.skipif(shutil.which(QGIS_PROCESS) is None, reason="qgis_process.bin not installed"),
]


def test_workflow_model_chains_the_four_algorithms(tmp_path, eolearn):
    assert MODEL.is_file()
    work = tmp_path / "work"
    work.mkdir()
    cfg = tmp_path / "profile"
    assert run_qgis_process(["plugins", "enable", "deeplandcover"], cfg).returncode == 0
    res = run_qgis_process(
        [
            "run",
            str(MODEL),
            "--",
            f"image={eolearn / 's2l1c_2015-07-11.tif'}",
            f"labels={eolearn / 'lulc_polygons.gpkg'}",
            "class_field=LULC_ID",
            f"reference={eolearn / 'lulc_polygons.gpkg'}",
            f"work_folder={work}",
            "tile_size=32",
            "epochs=1",
        ],
        cfg,
        timeout=900,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for f in [
        "chips/manifest.json",
        "model/model.onnx",
        "classified.tif",
        "confusion_matrix.csv",
        "accuracy_report.html",
    ]:
        assert (work / f).is_file(), f
