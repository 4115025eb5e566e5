"""Test helpers around QGIS: qgis_process in a private profile (:mod:`.qgis_run`), child processes for GUI
checks, small test layers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .qgis_run import QGIS_PROCESS, qgis_env
from .repository import REPO

__all__ = [
    "QGIS_PROCESS",
    "REPO",
    "child_failure",
    "load_model3",
    "make_test_layers",
    "run_algorithm",
    "run_python_child",
    "run_qgis_process",
]


def run_qgis_process(args: list[str], config_dir: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``qgis_process.bin ARGS`` in the private profile ``config_dir``; returns the completed process."""
    return subprocess.run(
        [QGIS_PROCESS, *args], env=qgis_env(config_dir), capture_output=True, text=True, timeout=timeout
    )


def run_python_child(
    script: Path, job: dict, work: Path, timeout: float = 300
) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``python SCRIPT JOB.json`` in a fresh process with a fresh QGIS profile; returns (process, report).

    For GUI checks that may crash QGIS (signal 11): the crash ends the child, not the test run. The job
    (a JSON-able dict) must name ``report``, the JSON file the child writes; the report is ``{}`` when the
    child died before writing it. ``XDG_CONFIG_HOME`` points into ``work`` so that no saved dialog state
    (splitter sizes, folded groups) of another run leaks in.
    """
    import json
    import os
    import sys

    work.mkdir(parents=True, exist_ok=True)
    job_file = work / "job.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        XDG_CONFIG_HOME=str(work / "config"),
        XDG_RUNTIME_DIR=str(work / "runtime"),
        PYTHONFAULTHANDLER="1",
    )
    (work / "runtime").mkdir(exist_ok=True, mode=0o700)
    res = subprocess.run(
        [sys.executable, str(script), str(job_file)], env=env, capture_output=True, text=True, timeout=timeout
    )
    report_file = Path(job["report"])
    report = json.loads(report_file.read_text(encoding="utf-8")) if report_file.is_file() else {}
    return res, report


def child_failure(res: subprocess.CompletedProcess, what: str) -> str:
    """A test-failure message for a child that did not exit 0: the signal (a crash) and its stderr's end."""
    import signal

    code = res.returncode
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
    if code in (139, 134, 136):  # a shell-style 128 + signal
        how += f" ({signal.Signals(code - 128).name})"
    return f"{what}: the QGIS child process {how}.\n--- its stderr (end) ---\n{res.stderr[-6000:]}"


def make_test_layers(folder: Path) -> dict[str, str]:
    """Three small layers for GUI tests (name -> file), EPSG:32633, 64 x 64 px at 10 m:

    ``image`` (4 bands blue, green, red, nir, uint16), ``classes`` (1 band uint8, values 1-3 with a colour
    table) and ``polygons`` (GeoPackage: three squares with ``class_id`` int and ``name`` str).
    """
    import numpy as np
    import rasterio
    from osgeo import ogr, osr
    from rasterio.transform import from_origin

    from .onnx_models import smooth_image

    folder.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="GTiff", width=64, height=64, crs="EPSG:32633", transform=from_origin(500000, 5800000, 10, 10)
    )
    with rasterio.open(folder / "image.tif", "w", count=4, dtype="uint16", **profile) as ds:
        ds.write(smooth_image(4, 64, 64, seed=3))
        for i, name in enumerate(["blue", "green", "red", "nir"], 1):
            ds.set_band_description(i, name)
    with rasterio.open(folder / "classes.tif", "w", count=1, dtype="uint8", **profile) as ds:
        ds.write((np.indices((64, 64)).sum(axis=0) // 16 % 3 + 1).astype(np.uint8)[None])
        ds.write_colormap(1, {1: (230, 25, 75, 255), 2: (60, 180, 75, 255), 3: (0, 130, 200, 255)})
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(folder / "polygons.gpkg"))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    layer = ds.CreateLayer("polygons", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    layer.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    for i in range(3):
        x0, y0 = 500000 + 200 * i, 5799400
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("class_id", i + 1)
        feature.SetField("name", f"class {i + 1}")
        ring = f"{x0} {y0},{x0 + 200} {y0},{x0 + 200} {y0 + 400},{x0} {y0 + 400},{x0} {y0}"
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON(({ring}))"))
        layer.CreateFeature(feature)
    ds = None  # closes the GeoPackage
    return {
        n: str(folder / f)
        for n, f in (("image", "image.tif"), ("classes", "classes.tif"), ("polygons", "polygons.gpkg"))
    }


def run_algorithm(alg_id: str, params: dict, context=None):
    """Run a registered algorithm in this process through ``processing.run`` (the headless QGIS of pytest-qgis;
    raises QgsProcessingException on failure). :func:`.qgis_run.run_algorithm` runs one through qgis_process."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    return processing.run(alg_id, params, context=context or QgsProcessingContext(), feedback=QgsProcessingFeedback())


def load_model3(path: Path):
    """The graphical-modeler model (``.model3``) at ``path`` as a ``QgsProcessingModelAlgorithm`` (asserts it reads)."""
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(path)), f"QGIS cannot read {path}"
    return model
