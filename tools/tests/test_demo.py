"""`make demo` in its DEMO_FAST form: the whole chain through qgis_process on real data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from deeplandcover.tests.helpers.qgis_run import QGIS_PROCESS, REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.qgis_process,
    pytest.mark.skipif(shutil.which(QGIS_PROCESS) is None, reason="qgis_process.bin not installed"),
]


def test_demo_fast_runs_the_whole_chain(tmp_path, data_dir):
    env = dict(os.environ, DEMO_FAST="1", DEMO_OUTPUT=str(tmp_path / "demo"), DLC_DATA=str(data_dir))
    res = subprocess.run(
        [sys.executable, "-m", "deeplandcover.tools.demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    out = tmp_path / "demo"
    summary = (out / "summary.md").read_text()
    assert "FAILED" not in summary
    for f in [
        "landcover/landcover_classified.tif",
        "landcover/landcover_classified.qml",
        "landcover/model/model.onnx",
        "landcover/holdout_accuracy.html",
        "landcover/quicklook_classified.png",
        "change/rennes_cva.tif",
        "change/rennes_model_change.tif",
        "change/quicklook_change.png",
        "timeseries/slovenia_convlstm.tif",
        "timeseries/holdout_accuracy.html",
    ]:
        assert (out / f).is_file(), f
    assert "hold-out OA" in summary and "CVA change F1" in summary
