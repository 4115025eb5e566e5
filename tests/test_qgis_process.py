"""End-to-end smoke test of the real qgis_process.bin in a temporary profile."""

from __future__ import annotations

import shutil

import pytest
from _qgis_env import QGIS_PROCESS, run_qgis_process

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
