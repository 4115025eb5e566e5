"""End-to-end smoke test of the real qgis_process.bin in a temporary profile."""

from __future__ import annotations

import shutil

import pytest
from helpers.qgis_env import QGIS_PROCESS, run_qgis_process

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

    from helpers.qgis_env import REPO

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
