"""A bare QGIS: none of the plugin's packages importable, every algorithm still listed (issue #27).

In a subprocess with QGIS's Python, a meta-path finder installed before anything else is imported
makes rasterio, torch, onnxruntime, geopandas and the other heavy packages unimportable (their
metadata stays: this is also a broken install, which the dependency check must catch). Then QGIS and
Processing are initialised, the provider is registered, and:

* ``provider.algorithms()`` holds every algorithm of ``provider.ALGORITHMS``, with no load error;
* running an algorithm that needs a blocked package stops with the installer's name, not a traceback;
* the installer's dry run (pip's resolution, nothing written) runs and lists what it would install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from deeplandcover.installer import folder

from .installer_helpers import isolated, wheels  # noqa: F401  (fixtures)

#: What an algorithm module must not import when it is loaded (the plugin's optional packages).
HEAVY = (
    "rasterio",
    "torch",
    "onnxruntime",
    "onnx",
    "geopandas",
    "pandas",
    "shapely",
    "pyproj",
    "scipy",
    "dask",
    "distributed",
    "pyogrio",
    "fiona",
    "matplotlib",
)

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HEAVY:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked: a bare QGIS)")

    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    # What QGIS's own Python imports (3.40's qgis.core imports shapely) a bare QGIS has: block the rest.
    HEAVY = set(sys.argv[1].split(",")) - {m.split(".")[0] for m in sys.modules}
    sys.meta_path.insert(0, Block())
    app = QgsApplication([], False)
    app.initQgis()
    log = []
    QgsApplication.messageLog().messageReceived.connect(lambda msg, tag, level: log.append(msg))
    import os
    sys.path.append(os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))  # QGIS's Processing plugin
    from processing.core.Processing import Processing
    Processing.initialize()
    import processing

    from deeplandcover.provider.provider import ALGORITHMS, DeepLandCoverProvider
    provider = DeepLandCoverProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    out = {"listed": sorted(a.name() for a in provider.algorithms()), "expected": len(ALGORITHMS)}
    out["load_errors"] = [m for m in log if "could not be loaded" in m]

    refused = {}
    for alg_id in ("deeplandcover:trainmodel", "deeplandcover:classifypixels"):
        alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
        if alg is None:
            continue  # not listed: reported by the listing check
        ok, why = alg.canExecute()
        try:
            alg.processAlgorithm({}, QgsProcessingContext(), QgsProcessingFeedback())
            refused[alg_id] = [ok, why, "ran"]
        except QgsProcessingException as e:
            refused[alg_id] = [ok, why, str(e)]
    out["refused"] = refused

    res = processing.run(
        "deeplandcover:installdependencies",
        {"WHAT": 1, "GPU": 1, "DRY_RUN": True, "EXTRA_PACKAGES": "dlc-probe"},
    )
    out["dry_run"] = {k: res[k] for k in ("PACKAGES", "PIP_COMMAND", "RESTART_REQUIRED")}
    out["imported"] = sorted(m for m in HEAVY if m in sys.modules)
    print("RESULT " + json.dumps(out))
    """
)


def test_every_algorithm_is_listed_and_the_installer_runs_without_the_packages(wheels, isolated, tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", folder.ENV_ROOT: str(isolated)}
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(HEAVY)], env=env, capture_output=True, text=True, timeout=600
    )
    lines = [line for line in res.stdout.splitlines() if line.startswith("RESULT ")]
    assert res.returncode == 0 and lines, res.stdout[-3000:] + res.stderr[-5000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    assert not out["load_errors"], out["load_errors"]
    assert len(out["listed"]) == out["expected"] and "trainmodel" in out["listed"], out["listed"]
    for alg_id, (ok, why, error) in out["refused"].items():
        assert ok is False and "Install Python dependencies" in why, (alg_id, why)
        assert "Install Python dependencies" in error and "cannot be imported" in error, (alg_id, error)
    dry = out["dry_run"]
    assert sorted(dry["PACKAGES"].split()) == ["dlc-probe-dep==1.0", "dlc-probe==1.0"]
    assert "--dry-run" in dry["PIP_COMMAND"] and dry["RESTART_REQUIRED"] is False
    assert out["imported"] == []
    assert not folder.packages_dir().exists()  # a dry run writes nothing there
