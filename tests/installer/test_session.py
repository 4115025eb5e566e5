"""After an install: the packages in this session, no .pth file run, pip commands that can be run again,
each thing said once (issue #27)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deeplandcover.installer import folder, install
from deeplandcover.installer.install import InstallOptions

from ..helpers.feedback import RecordingFeedback
from .installer_helpers import dist_infos, isolated, make_wheel, wheels  # noqa: F401  (fixtures)

HOOK = "import sys; sys.dlc_pth_ran = True\n"  # what a .pth file's import line may run


@pytest.fixture
def pth_wheel(wheels):
    """dlc-probe-pth 1.0, which ships a .pth file beside its package (as setuptools' distutils-precedence.pth)."""
    make_wheel(wheels, "dlc-probe-pth", "1.0", root_files={"dlc-probe-hook.pth": HOOK})
    return wheels


def test_pth_files_are_deleted_after_an_install(pth_wheel, isolated):
    fb = RecordingFeedback()
    target = folder.packages_dir()
    target.mkdir(parents=True)
    (target / "old-plugin-version.pth").write_text(HOOK)  # left by an earlier install
    res = install.install(["dlc-probe-pth"], feedback=fb)
    assert res.packages == ["dlc-probe-pth==1.0"] and dist_infos(target) == {"dlc_probe_pth-1.0.dist-info"}
    assert not list(target.glob("*.pth"))
    assert any(line.startswith("Deleted dlc-probe-hook.pth, old-plugin-version.pth") for line in fb.lines)
    import dlc_probe_pth  # the package itself is there and importable

    assert dlc_probe_pth.__version__ == "1.0" and not getattr(sys, "dlc_pth_ran", False)


def test_the_folder_is_added_without_running_its_pth_files(isolated):
    """Also a folder that still holds one (an install of an older plugin version): the plugin's start-up
    (``deeplandcover._add_plugin_packages``) appends it without ``site.addsitedir``."""
    target = folder.packages_dir()
    target.mkdir(parents=True)
    (target / "distutils-precedence.pth").write_text(HOOK)
    code = (
        "import sys, deeplandcover; deeplandcover._add_plugin_packages(); "
        f"print(sys.path[-1] == {str(target)!r}, getattr(sys, 'dlc_pth_ran', False))"
    )
    env = {**os.environ, folder.ENV_ROOT: str(isolated)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "False"], out.stderr[-2000:]


def test_logged_pip_commands_can_be_run_again(wheels, isolated):
    """The resolution's report and the constraints lie beside the package folder, not in the deleted
    staging folder; the install command names the package folder."""
    res = install.install(["dlc-probe"])
    target = folder.packages_dir()
    resolve, stage = res.commands
    assert ".staging-" not in resolve + stage and str(target.parent) in resolve
    assert str(res.constraints) in resolve and res.constraints.parent == target.parent
    assert stage.endswith("dlc-probe==1.0 dlc-probe-dep==1.0") or stage.endswith("dlc-probe-dep==1.0 dlc-probe==1.0")
    for command in (resolve, stage):
        out = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=300)  # noqa: S602
        assert out.returncode == 0, f"{command}\n{out.stdout[-2000:]}{out.stderr[-2000:]}"
    assert (target.parent / f"{target.name}-pip-report.json").is_file()
    assert dist_infos(target) == {"dlc_probe-1.0.dist-info", "dlc_probe_dep-1.0.dist-info"}


def test_would_install_and_pips_lines_are_said_once(wheels, isolated):
    fb = RecordingFeedback()
    install.install(["dlc-probe"], feedback=fb, options=InstallOptions(dry_run=True))
    would = [line for line in fb.lines if "Would install" in line]
    assert len(would) == 1 and would[0].startswith("Would install: ")  # ours; pip's own is not repeated
    assert sum(line.startswith("Python: ") for line in fb.lines) == 1


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


def _run(params):
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
    res, lines = _run({"WHAT": 0, "GPU": 1, "DRY_RUN": True, "EXTRA_PACKAGES": "dlc-probe"})
    assert calls == [] and res["PACKAGES"]  # a dry run reloads nothing
    res, lines = _run({"WHAT": 0, "GPU": 1, "EXTRA_PACKAGES": "dlc-probe"})
    assert calls == [1] and res["RESTART_REQUIRED"] is False
    assert "deeplandcover:installdependencies" in [a.id() for a in prov.algorithms()]
    assert any("can be used now: the algorithms are reloaded, no restart is needed" in line for line in lines)
    assert sum("Would install" in line for line in lines) == 0
    assert res["PIP_COMMAND"].count("\n") == 1 and ".staging-" not in res["PIP_COMMAND"]


def test_dependency_check_says_what_the_installer_says(monkeypatch):
    """Both say: the installer's packages are used without a restart; a command run by hand needs one."""
    from deeplandcover.core import deps

    monkeypatch.setattr(deps, "uses_debian_python", lambda: False)
    hint = deps.install_hint([deps.ONNXRUNTIME])
    assert "Install Python dependencies" in hint and "(no restart needed)" in hint
    assert hint.endswith("then restart QGIS.")
