"""installer.install: real pip runs into the plugin folder; CUDA builds and unreachable indexes stop it (issue #27).

The pip runs are real (``python -m pip`` in a subprocess) but offline: the packages are wheels built
here by :func:`installer_helpers.make_wheel` and found through ``PIP_FIND_LINKS`` with ``PIP_NO_INDEX``; only
:func:`test_real_install_from_the_configured_index` uses the package index pip is configured with.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deeplandcover.core.errors import CanceledError
from deeplandcover.installer import folder, install, merge, names, pip
from deeplandcover.installer.errors import InstallError
from deeplandcover.installer.gpu import BuildChoice
from deeplandcover.installer.install import InstallOptions

from ..helpers.feedback import RecordingFeedback
from .installer_helpers import (  # noqa: F401  (fixtures)
    HOOK,
    closed_port,
    dist_infos,
    fake_dist,
    http_index,
    isolated,
    make_wheel,
    no_staging_left,
    wheels,
)

Recorder = RecordingFeedback


# -- real pip runs --------------------------------------------------------------------------------
def test_install_local_wheels_into_the_plugin_folder_then_upgrade(wheels, isolated):
    import numpy

    target = folder.packages_dir()
    fb = Recorder()
    res = install.install(["dlc-probe"], feedback=fb)
    assert sorted(res.packages) == ["dlc-probe-dep==1.0", "dlc-probe==1.0"]
    assert dist_infos(target) == {"dlc_probe-1.0.dist-info", "dlc_probe_dep-1.0.dist-info"}
    assert (target / "dlc_probe" / "old.py").is_file() and (target / "bin" / "dlc-probe").is_file()
    assert not (target / "numpy").exists() and not (target / "affine").exists()  # QGIS's Python has them
    assert f"numpy=={numpy.__version__}" in res.constraints.read_text()
    assert len(res.commands) == 2 and "--dry-run" in res.commands[0] and "--no-deps" in res.commands[1]
    assert any(line.startswith("Successfully installed") for line in fb.lines)  # pip's log streamed
    assert fb.progress[-1] == 100 and fb.progress == sorted(fb.progress)
    assert no_staging_left(isolated)
    import dlc_probe  # activated: importable at once

    assert dlc_probe.__version__ == "1.0" and not res.restart_required

    again = install.install(["dlc-probe"])  # met: pip resolves nothing, nothing moves
    assert again.packages == [] and dist_infos(target) == {"dlc_probe-1.0.dist-info", "dlc_probe_dep-1.0.dist-info"}

    make_wheel(wheels, "dlc-probe", "2.0", requires=("dlc-probe-dep",))  # 2.0 has no old.py
    res = install.install(["dlc-probe>=2"])
    assert res.packages == ["dlc-probe==2.0"]
    assert dist_infos(target) == {"dlc_probe-2.0.dist-info", "dlc_probe_dep-1.0.dist-info"}
    assert not (target / "dlc_probe" / "old.py").exists()
    assert res.restart_required == ["dlc_probe"]  # imported above, in this process
    out = subprocess.run(
        [sys.executable, "-c", "import dlc_probe; print(dlc_probe.__version__)"],
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "2.0"


@pytest.mark.parametrize("provided_version", ["1.0", "0+unknown"])
@pytest.mark.parametrize("legacy", [False, True], ids=["report", "target-then-prune"])
def test_distributions_the_running_python_provides_never_land_in_the_folder(
    legacy, provided_version, wheels, tmp_path, isolated, monkeypatch
):
    """dlc-probe-dep is "provided" only in this process (pip's subprocess does not see it): with the
    report it is resolved and not installed; with the old pip path it is installed, then pruned. Also
    when its version is a placeholder that is not pinned and does not meet the requirement (Debian's
    shapely reports 0+unknown): the copy QGIS's Python has is the one that is imported anyway."""
    qgis_site = tmp_path / "qgis-site"
    fake_dist(qgis_site, "dlc-probe-dep", provided_version)
    sys.path.append(str(qgis_site))
    make_wheel(tmp_path / "lite", "dlc-probe-lite", "1.0", requires=("dlc-probe-dep>=1.0",))
    monkeypatch.setenv("PIP_FIND_LINKS", f"{wheels} {tmp_path / 'lite'}")
    res = install.install(["dlc-probe-lite"], options=InstallOptions(legacy=legacy))
    target = folder.packages_dir()
    assert res.packages == ["dlc-probe-lite==1.0"] and res.skipped == ["dlc-probe-dep==1.0"]
    assert dist_infos(target) == {"dlc_probe_lite-1.0.dist-info"}
    assert not (target / "dlc_probe_dep").exists()
    pinned = "dlc-probe-dep==1.0" in res.constraints.read_text()
    assert pinned is (provided_version == "1.0")
    assert no_staging_left(isolated)


def test_a_build_writing_the_same_files_replaces_the_old_one(wheels, isolated):
    """onnxruntime -> onnxruntime-gpu: another distribution name, the same package folder."""
    make_wheel(wheels, "dlc-probe-gpu", "1.0", module="dlc_probe")
    install.install(["dlc-probe"])
    res = install.install(["dlc-probe-gpu"])
    target = folder.packages_dir()
    assert res.packages == ["dlc-probe-gpu==1.0"]
    assert dist_infos(target) == {"dlc_probe_gpu-1.0.dist-info", "dlc_probe_dep-1.0.dist-info"}
    assert not (target / "dlc_probe" / "old.py").exists() and not (target / "bin").exists()


def test_a_failed_move_rolls_back(wheels, isolated, monkeypatch):
    install.install(["dlc-probe"])
    target = folder.packages_dir()
    before = sorted(p.relative_to(target).as_posix() for p in target.rglob("*"))
    make_wheel(wheels, "dlc-probe", "2.0", requires=("dlc-probe-dep",))
    real_replace, calls = os.replace, []

    def flaky_replace(src, dst):
        if "/site/" in Path(src).as_posix():  # moving a new entry in (after the old files were moved aside)
            calls.append(src)
            if len(calls) == 2:
                raise PermissionError(13, "in use", str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(merge.os, "replace", flaky_replace)
    with pytest.raises(InstallError, match="left as it was"):
        install.install(["dlc-probe>=2"])
    monkeypatch.setattr(merge.os, "replace", real_replace)
    assert len(calls) == 2
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == before
    assert no_staging_left(isolated)


def test_dry_run_lists_without_installing(wheels, isolated):
    res = install.install(["dlc-probe"], options=InstallOptions(dry_run=True, constraints=["dlcaffine<3"]))
    assert res.constraints.read_text().endswith("\ndlcaffine<3\n")
    assert res.dry_run and sorted(res.packages) == ["dlc-probe-dep==1.0", "dlc-probe==1.0"]
    assert "--no-deps --upgrade --target" in res.commands[-1] and str(folder.packages_dir()) in res.commands[-1]
    assert not folder.packages_dir().exists() and no_staging_left(isolated)
    old = install.install(["dlc-probe"], options=InstallOptions(dry_run=True, legacy=True))
    assert old.packages == ["dlc-probe"] and "--constraint" in old.commands[0]
    assert not folder.packages_dir().exists()


def test_pip_failure_is_clear_and_leaves_nothing(wheels, isolated):
    with pytest.raises(
        InstallError,
        match=r"(?s)pip failed \(exit code 1\).*pip said: .*No matching distribution found for dlc-no-such-pkg>=1"
        r".*has no release of it",
    ):
        install.install(["dlc-no-such-pkg>=1"])
    assert not folder.packages_dir().exists() and no_staging_left(isolated)


def test_cancel_kills_pip_and_leaves_no_folder(wheels, isolated, monkeypatch):
    spawned = []
    real_spawn = pip._spawn
    monkeypatch.setattr(pip, "_spawn", lambda cmd, env: spawned.append(real_spawn(cmd, env)) or spawned[-1])

    class CancelOnceStarted(Recorder):
        def is_canceled(self) -> bool:
            return bool(spawned)

    with pytest.raises(CanceledError, match="nothing was installed"):
        install.install(["dlc-probe"], feedback=CancelOnceStarted())
    assert len(spawned) == 1 and spawned[0].poll() is not None
    if os.name == "posix":
        assert spawned[0].returncode < 0  # killed by a signal, not finished
    assert not folder.packages_dir().exists() and no_staging_left(isolated)


def test_nothing_to_install_runs_no_pip(monkeypatch):
    monkeypatch.setattr(install, "find_python", lambda: pytest.fail("pip must not run"))
    assert install.install([]).packages == []


def test_refuses_to_install_into_qgis_site_packages():
    site_dir = next(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    with pytest.raises(InstallError, match="Refusing"):
        install.install(["anything"], target=site_dir)


def test_real_install_from_the_configured_index(isolated):
    """tomli-w (pure Python, no dependencies) from the index pip is configured with (PyPI)."""
    try:
        res = install.install(["tomli-w"])
    except InstallError as e:
        if "could not reach the package index" in str(e) or "has no release" in str(e):
            pytest.skip(f"package index not reachable: {e}")
        raise
    assert [names.canonical_name(p.split("==")[0]) for p in res.packages] == ["tomli-w"]
    assert (folder.packages_dir() / "tomli_w" / "__init__.py").is_file()


CPU = BuildChoice("cpu", False, "")


# -- pip's resolution with CUDA packages stops the install ------------------------------------------
@pytest.fixture
def cuda_wheels(wheels):
    """dlc-gputorch 2.0+cu126 needing nvidia-dlc-cublas and triton: the shape of PyPI's Linux torch."""
    make_wheel(wheels, "dlc-gputorch", "2.0+cu126", requires=("nvidia-dlc-cublas", "triton"))
    make_wheel(wheels, "nvidia-dlc-cublas", "12.6")
    make_wheel(wheels, "triton", "3.0", module="dlc_fake_triton")
    return wheels


@pytest.mark.parametrize("legacy", [False, True], ids=["report", "target-then-check"])
def test_cuda_resolution_stops_before_anything_is_installed(cuda_wheels, isolated, legacy):
    fb = RecordingFeedback()
    with pytest.raises(InstallError, match=r"Stopped before (installing|downloading) anything") as e:
        install.install(["dlc-gputorch"], feedback=fb, options=InstallOptions(build=CPU, legacy=legacy))
    msg = str(e.value)
    assert "3 CUDA/triton packages (dlc-gputorch, nvidia-dlc-cublas, triton)" in msg  # +cu126: a CUDA build
    assert "GPU: CPU only" in msg and "Torch package index" in msg and "GPU: NVIDIA GPU" in msg
    assert ("before downloading" in msg) is not legacy  # an old pip had to download them to know
    assert not folder.packages_dir().exists() and no_staging_left(isolated)
    if not legacy:  # decided on the report: the install step never ran
        assert not any("--no-deps" in c for c in fb.lines if c.startswith(sys.executable))


def test_cuda_allowed_when_the_gpu_is_chosen(cuda_wheels, isolated):
    res = install.install(["dlc-gputorch"], options=InstallOptions(build=BuildChoice("gpu", True, "")))
    assert sorted(res.packages) == ["dlc-gputorch==2.0+cu126", "nvidia-dlc-cublas==12.6", "triton==3.0"]


def test_unreachable_torch_index_stops_within_seconds_naming_it(wheels, isolated, monkeypatch):
    url = f"http://127.0.0.1:{closed_port()}/whl/cpu"
    monkeypatch.setattr(install, "run_pip", lambda *a, **k: pytest.fail("pip must not run"))
    t0 = time.monotonic()
    with pytest.raises(InstallError) as e:
        install.install(
            ["dlc-probe"],
            options=InstallOptions(index_args=["--extra-index-url", url], build=BuildChoice("cpu", False, url)),
        )
    assert time.monotonic() - t0 < 30
    msg = str(e.value)
    assert msg.startswith(f"Could not reach the torch package index {url} (") and "refused" in msg.lower()
    assert "GPU: CPU only" in msg and "Torch package index" in msg and "nothing was downloaded" in msg
    assert not folder.packages_dir().exists() and no_staging_left(isolated)


def test_reachable_index_is_passed_to_pip(wheels, isolated, http_index):
    url, _ = http_index
    fb = RecordingFeedback()
    res = install.install(
        ["dlc-probe"], feedback=fb, options=InstallOptions(index_args=["--extra-index-url", url], dry_run=True)
    )
    assert any(line == f"Checking that the package index {url} answers ..." for line in fb.lines)
    assert all(f"--extra-index-url {url}" in c for c in res.commands)


def test_real_pip_against_a_closed_index_says_connection_refused(isolated, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{closed_port()}/simple")
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")  # none of this machine's find-links or mirrors
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    t0 = time.monotonic()
    with pytest.raises(InstallError, match=r"^pip could not reach the package index \(Connection refused"):
        install.install(["dlc-not-on-any-index"])
    assert time.monotonic() - t0 < 60
    assert not folder.packages_dir().exists()


# -- after an install: no .pth file run, pip commands that can be run again, each thing said once (issue #27)
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
