"""Tests of algorithms.install_dependencies: the Install Python dependencies algorithm run through Processing."""

from __future__ import annotations

import sys

import pytest

from deeplandcover.installer import folder

from ..installer import installer_helpers
from ..installer.installer_helpers import dist_infos

# The installer tests' fixtures: the plugin folder under tmp_path (autouse) and a find-links folder of wheels
# built on the fly (assigned, not imported, so that the test arguments that use them do not redefine an import).
isolated = installer_helpers.isolated
wheels = installer_helpers.wheels


# -- the Processing algorithm ---------------------------------------------------------------------
@pytest.fixture
def install_alg(qgis_app, qgis_processing):
    from deeplandcover.algorithms.install_dependencies import InstallDependenciesAlgorithm

    alg = InstallDependenciesAlgorithm().create()  # not registered in the provider: run the instance
    assert alg is not None
    return alg


def _run(alg, params):
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    class Capture(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.lines = []

        def pushInfo(self, info):  # noqa: N802
            self.lines.append(info)

        def pushWarning(self, warning):  # noqa: N802
            self.lines.append("WARNING " + warning)

    fb = Capture()
    return processing.run(alg, params, context=QgsProcessingContext(), feedback=fb), fb.lines


def test_algorithm_metadata(install_alg):
    assert install_alg.name() == "installdependencies" and install_alg.displayName() == "Install Python dependencies"
    assert install_alg.groupId() == "setup" and install_alg.REQUIREMENTS == ()
    assert install_alg.canExecute() == (True, "")
    keys = [p.name() for p in install_alg.parameterDefinitions()]
    assert keys == ["WHAT", "GPU", "DRY_RUN", "EXTRA_PACKAGES", "TORCH_INDEX_URL"]  # public ids: only appended
    assert str(folder.packages_dir()) in install_alg.shortHelpString()


def test_algorithm_dry_run_everything(install_alg, wheels, isolated):
    results, lines = _run(install_alg, {"WHAT": 2, "GPU": 1, "DRY_RUN": True, "EXTRA_PACKAGES": "dlc-probe"})
    assert results["TARGET_FOLDER"] == str(folder.packages_dir())
    assert sorted(results["PACKAGES"].split()) == ["dlc-probe-dep==1.0", "dlc-probe==1.0"]
    assert "--dry-run" in results["PIP_COMMAND"] and results["RESTART_REQUIRED"] is False
    assert any(line.startswith("Already installed: ") and "numpy" in line for line in lines)
    assert any("Dry run: nothing was installed" in line for line in lines)
    assert not folder.packages_dir().exists()


def test_algorithm_installs_a_small_package(install_alg, wheels, isolated):
    results, lines = _run(install_alg, {"WHAT": 0, "GPU": 1, "DRY_RUN": False, "EXTRA_PACKAGES": "dlc-probe"})
    target = folder.packages_dir()
    assert sorted(results["PACKAGES"].split()) == ["dlc-probe-dep==1.0", "dlc-probe==1.0"]
    assert dist_infos(target) == {"dlc_probe-1.0.dist-info", "dlc_probe_dep-1.0.dist-info"}
    assert any(line.startswith("Successfully installed") for line in lines)
    assert any("no restart is needed" in line for line in lines)
    assert str(target) in sys.path


def test_algorithm_error_is_a_processing_exception(install_alg, wheels):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="pip failed"):
        _run(install_alg, {"WHAT": 0, "GPU": 1, "DRY_RUN": False, "EXTRA_PACKAGES": "dlc-no-such-pkg"})


# -- the Processing algorithm: same session ------------------------------------------------------------
@pytest.fixture
def provider(qgis_app, qgis_processing, monkeypatch):
    """The registered Deep Land Cover provider, its ``loadAlgorithms`` calls counted."""
    from qgis.core import QgsApplication

    from deeplandcover.provider.provider import DeepLandCoverProvider

    registry = QgsApplication.processingRegistry()
    added = registry.providerById("deeplandcover") is None
    if added:
        registry.addProvider(DeepLandCoverProvider())
    calls = []
    real = DeepLandCoverProvider.loadAlgorithms
    monkeypatch.setattr(DeepLandCoverProvider, "loadAlgorithms", lambda self: calls.append(1) or real(self))
    yield registry.providerById("deeplandcover"), calls
    if added:
        registry.removeProvider("deeplandcover")


def _run_registered(params):
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback
    from qgis.PyQt.QtCore import QCoreApplication

    lines = []

    class Capture(QgsProcessingFeedback):
        def pushInfo(self, info):  # noqa: N802
            lines.append(info)

        def pushWarning(self, warning):  # noqa: N802
            lines.append("WARNING " + warning)

    res = processing.run(
        "deeplandcover:installdependencies", params, context=QgsProcessingContext(), feedback=Capture()
    )
    QCoreApplication.processEvents()  # the deferred reload
    return res, lines


def test_install_reloads_the_algorithms_and_says_no_restart(provider, wheels, isolated):
    prov, calls = provider
    res, lines = _run_registered({"WHAT": 0, "GPU": 1, "DRY_RUN": True, "EXTRA_PACKAGES": "dlc-probe"})
    assert calls == [] and res["PACKAGES"]  # a dry run reloads nothing
    res, lines = _run_registered({"WHAT": 0, "GPU": 1, "EXTRA_PACKAGES": "dlc-probe"})
    assert calls == [1] and res["RESTART_REQUIRED"] is False
    assert "deeplandcover:installdependencies" in [a.id() for a in prov.algorithms()]
    assert any("can be used now: the algorithms are reloaded, no restart is needed" in line for line in lines)
    assert sum("Would install" in line for line in lines) == 0
    assert res["PIP_COMMAND"].count("\n") == 1 and ".staging-" not in res["PIP_COMMAND"]
