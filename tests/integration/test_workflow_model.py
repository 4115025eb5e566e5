"""The shipped graphical-modeler models (resources/models/*.model3) as an analyst opens them (issue #31).

Every shipped model validates with the provider registered (no "Parameter X is mandatory", no child QGIS's
modeler would draw red), has no field input under a layer input that accepts rasters, opens in the
modeler and in its run dialog without crashing QGIS (child process, offscreen), and the workflow model runs
end to end. That it is exactly what ``tools/dev/make_workflow_model.py`` makes from the algorithms now is
checked in tools/tests/test_make_workflow_model.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ..helpers.qgis_env import (
    QGIS_PROCESS,
    REPO,
    child_failure,
    load_model3,
    make_test_layers,
    run_python_child,
    run_qgis_process,
)

MODEL = REPO / "resources" / "models" / "landcover_workflow.model3"
MODELS = sorted((REPO / "resources" / "models").glob("*.model3"))
PROBE = REPO / "tests" / "gui" / "dialog_probe.py"
ARTEFACTS = Path(os.environ.get("DLC_GUI_ARTEFACTS") or REPO / "gui_output")


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_shipped_model_validates(dlc_provider, path):
    """validate() has no problem and no child would be drawn red (validateChildAlgorithm, as the modeler)."""
    model = load_model3(path)
    ok, problems = model.validate()
    assert ok and not problems, "\n".join(problems)
    for cid, child in model.childAlgorithms().items():
        assert child.algorithm() is not None, f"{cid}: algorithm {child.algorithmId()} is not available"
        child_ok, issues = model.validateChildAlgorithm(cid)
        assert child_ok, f"{cid} would be drawn red: {issues}"


def test_inputs_in_the_analysts_words(dlc_provider):
    model = load_model3(MODEL)  # kept: the definitions belong to it
    names = [p.name() for p in model.parameterDefinitions()]
    # the README's qgis_process line names these inputs
    assert {"image", "labels", "class_field", "reference", "work_folder", "tile_size", "epochs"} <= set(names)
    for p in model.parameterDefinitions():
        assert p.description() and p.description()[0].isupper() and "_" not in p.description(), p.description()


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_model_opens_in_the_modeler_and_its_run_dialog(path, tmp_path):
    """In a QGIS GUI application (child process): the modeler shows the model, and the run dialog the toolbox
    opens under Models survives every layer as the current layer and in every layer input."""
    job = {
        "mode": "model",
        "model": str(path),
        "layers": make_test_layers(tmp_path / "layers"),
        "artefacts": str(ARTEFACTS),
        "scene_png": str(ARTEFACTS / f"{path.stem}_model.png"),
        "report": str(tmp_path / "report.json"),
    }
    res, report = run_python_child(PROBE, job, tmp_path / "work", timeout=300)
    if res.returncode != 0:
        pytest.fail(child_failure(res, f"opening {path.name} in the modeler and its run dialog"))
    assert report["valid"], report["problems"]
    red = {cid: c["issues"] for cid, c in report["children"].items() if not (c["found"] and c["valid"])}
    assert not red, f"drawn red in the modeler: {red}"
    assert Path(report["modeler_png"]).is_file() and Path(report["scene_png"]).is_file()
    for current, clicked in report["run_dialog"].items():
        assert any(c.startswith("image=") for c in clicked), (current, clicked)


@pytest.mark.slow
@pytest.mark.qgis_process
@pytest.mark.skipif(shutil.which(QGIS_PROCESS) is None, reason="qgis_process.bin not installed")
def test_workflow_model_chains_the_four_algorithms(tmp_path, eolearn):
    """The README's command line, on a 100 x 101 px Sentinel-2 scene: every output in the work folder."""
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
