"""installer and the Install Python dependencies algorithm: constraints, interpreter, GPU, real pip runs.

The pip runs are real (``python -m pip`` in a subprocess) but offline: the packages are wheels built
here by :func:`installer_helpers.make_wheel` and found through ``PIP_FIND_LINKS`` with ``PIP_NO_INDEX``; only
:func:`test_real_install_from_the_configured_index` uses the package index pip is configured with.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deeplandcover.core import deps
from deeplandcover.core.errors import CanceledError, InputError
from deeplandcover.installer import constraints, folder, gpu, install, merge, names, pip, plan, python
from deeplandcover.installer.errors import InstallError
from deeplandcover.installer.install import InstallOptions

from ..helpers.feedback import RecordingFeedback
from .installer_helpers import dist_infos, fake_dist, isolated, make_wheel, no_staging_left, wheels  # noqa: F401  (fixtures)

PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"


# -- helpers ---------------------------------------------------------------------------------------
def script(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return p


Recorder = RecordingFeedback


# -- versions and constraints ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "version, ok",
    [
        ("1.26.4", True),
        ("2.13.0+cpu", True),
        ("4.0.2+dfsg", True),
        ("1!2.0rc1.post2.dev3", True),
        ("3", True),
        ("0+unknown", False),
        ("0.0.0", False),
        ("1.0~rc1", False),
        ("unknown", False),
        ("", False),
        (None, False),
    ],
)
def test_pinnable_version(version, ok):
    assert deps.pinnable_version(version) is ok


def test_constraints_pin_every_provided_distribution_and_skip_unusable_versions(tmp_path):
    qgis_site, user_site, target = tmp_path / "dist-packages", tmp_path / "user", tmp_path / "target"
    fake_dist(qgis_site, "numpy", "1.24.2")
    fake_dist(qgis_site, "GDAL", "3.6.2")
    fake_dist(qgis_site, "PyQt5", "5.15.9")
    fake_dist(qgis_site, "PyQt5_sip", "12.11.1")
    fake_dist(qgis_site, "lz4", "4.0.2+dfsg")
    fake_dist(qgis_site, "kiwisolver", "0+unknown")
    fake_dist(qgis_site, "weird", "1.0~rc1")
    fake_dist(user_site, "numpy", "1.26.4")  # first on the path wins, as for import
    fake_dist(target, "onnxruntime", "1.20.0")  # the plugin's own folder is not pinned

    text = constraints.constraints_text(path=[str(user_site), str(qgis_site), str(target)], exclude=[target])
    pins = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert pins == ["GDAL==3.6.2", "lz4==4.0.2+dfsg", "numpy==1.26.4", "PyQt5==5.15.9", "PyQt5_sip==12.11.1"]
    comment = next(line for line in text.splitlines() if line.startswith("# Not pinned"))
    assert "kiwisolver '0+unknown'" in comment and "weird '1.0~rc1'" in comment

    from packaging.requirements import Requirement  # every pin is a valid requirement for pip

    assert [str(Requirement(p).specifier) for p in pins][0] == "==3.6.2"
    written = constraints.write_constraints(tmp_path / "c" / "constraints.txt", path=[str(qgis_site)])
    assert "numpy==1.24.2" in written.read_text()


def test_constraints_of_the_running_python_pin_numpy_and_gdal():
    import numpy

    text = constraints.constraints_text()
    assert f"numpy=={numpy.__version__}\n" in text
    gdal = constraints.provided_distributions().get("gdal")
    if gdal is not None and deps.pinnable_version(gdal.version):
        assert f"{gdal.name}=={gdal.version}\n" in text


# -- the interpreter ------------------------------------------------------------------------------
def test_find_python_is_this_interpreter_in_a_plain_python():
    exe = python.find_python()
    out = subprocess.run(
        [exe, "-c", "import sys; print(sys.version_info[:2], sys.prefix)"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"{tuple(sys.version_info[:2])} {sys.prefix}"


def test_find_python_inside_a_qgis_binary(monkeypatch, tmp_path):
    """sys.executable is the QGIS binary (QGIS.app layout): the Python in Contents/MacOS/bin is found,
    a python3 of another version next to it is rejected."""
    macos = tmp_path / "QGIS.app" / "Contents" / "MacOS"
    (macos / "bin").mkdir(parents=True)
    qgis = script(macos, "QGIS", "exit 1")
    real = Path(getattr(sys, "_base_executable", sys.executable))
    (macos / "bin" / PY).symlink_to(real)
    script(macos / "bin", f"python{sys.version_info[0]}", 'echo "2 7"; echo /old')  # wrong version, tried after
    prefix = tmp_path / "QGIS.app" / "Contents" / "Frameworks"
    for attr in ("executable", "_base_executable"):
        monkeypatch.setattr(sys, attr, str(qgis), raising=False)
    for attr in ("prefix", "exec_prefix", "base_prefix", "base_exec_prefix"):
        monkeypatch.setattr(sys, attr, str(prefix))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv(python.ENV_PYTHON, raising=False)

    assert python.find_python() == str(macos / "bin" / PY)
    assert str(qgis) not in python.interpreter_candidates()


def test_find_python_error_says_what_was_tried(monkeypatch, tmp_path):
    real = str(Path(getattr(sys, "_base_executable", sys.executable)))
    bindir = tmp_path / "OSGeo4W" / "bin"
    qgis = script(bindir, "qgis-bin", "exit 1")
    script(bindir, PY, 'echo "2 7"; echo /old')
    for attr in ("executable", "_base_executable"):
        monkeypatch.setattr(sys, attr, str(qgis), raising=False)
    for attr in ("prefix", "exec_prefix", "base_prefix", "base_exec_prefix"):
        monkeypatch.setattr(sys, attr, str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv(python.ENV_PYTHON, raising=False)
    with pytest.raises(InstallError, match=r"(?s)Could not find the Python.*Python 2\.7.*DLC_PYTHON"):
        python.find_python()
    monkeypatch.setenv(python.ENV_PYTHON, real)
    assert python.find_python() == real


# -- GPU ------------------------------------------------------------------------------------------
@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    """``fake_smi(output, rc)`` puts an nvidia-smi printing ``output`` first on PATH; no /proc GPUs."""
    monkeypatch.setattr(gpu, "PROC_NVIDIA_GPUS", str(tmp_path / "no-proc"))

    def make(output: str | None, rc: int = 0) -> None:
        bindir = tmp_path / "smi-bin"
        if output is not None:
            script(bindir, "nvidia-smi", f"printf '%s\\n' '{output}'; exit {rc}")
        else:
            bindir.mkdir(exist_ok=True)
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/usr/bin{os.pathsep}/bin")

    return make


def test_gpu_detected_by_nvidia_smi(fake_smi):
    fake_smi("GPU 0: NVIDIA H200 (UUID: GPU-0f3c9a)")
    assert gpu.has_nvidia_gpu() and gpu.use_gpu("auto")
    ort = deps.Requirement("dlcghostort", ("dlcghostort", "onnxruntime-gpu"), "1.16")
    p = plan.plan([ort], gpu="auto")
    assert p.gpu and p.specs == ["onnxruntime-gpu>=1.16"]
    assert plan.plan([ort], gpu="cpu").specs == ["dlcghostort>=1.16"]


def test_no_gpu_when_nvidia_smi_lists_none_or_is_absent(fake_smi, tmp_path, monkeypatch):
    fake_smi("No devices were found", rc=6)
    assert not gpu.has_nvidia_gpu()
    assert gpu.use_gpu("gpu") and not gpu.use_gpu("cpu")
    fake_smi(None)
    assert not gpu.has_nvidia_gpu()
    if sys.platform.startswith("linux"):  # the driver's view without nvidia-smi
        (tmp_path / "proc" / "0000:01:00.0").mkdir(parents=True)
        monkeypatch.setattr(gpu, "PROC_NVIDIA_GPUS", str(tmp_path / "proc"))
        assert gpu.has_nvidia_gpu()
    with pytest.raises(InputError, match="auto, cpu, gpu"):
        gpu.use_gpu("cuda")


def test_torch_index(monkeypatch):
    monkeypatch.delenv(gpu.ENV_TORCH_INDEX, raising=False)
    assert gpu.index_args_for(["onnxruntime>=1.16"], gpu=False) == []
    cpu = gpu.index_args_for(["torch>=2.1", "onnx>=1.14"], gpu=False)
    assert cpu == (["--extra-index-url", gpu.TORCH_CPU_INDEX] if sys.platform.startswith("linux") else [])
    assert gpu.index_args_for(["torch>=2.1"], gpu=True) == []
    monkeypatch.setenv(gpu.ENV_TORCH_INDEX, "https://example.invalid/cu126")
    assert gpu.index_args_for(["torch"], gpu=True) == ["--extra-index-url", "https://example.invalid/cu126"]
    monkeypatch.setenv(gpu.ENV_TORCH_INDEX, "")
    assert gpu.index_args_for(["torch"], gpu=False) == []


# -- folder, sys.path, plan -----------------------------------------------------------------------
def test_packages_dir_per_python_version(monkeypatch, tmp_path, isolated):
    assert folder.packages_dir() == isolated / PY
    monkeypatch.delenv(folder.ENV_ROOT)
    assert folder.packages_dir(tmp_path / "profile") == tmp_path / "profile" / "deeplandcover" / PY
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert folder.packages_dir() == tmp_path / "xdg" / "deeplandcover" / PY


def test_activate_appends_after_site_packages_and_refreshes_caches(isolated):
    target = folder.packages_dir()
    assert not folder.activate()  # no folder yet: sys.path unchanged
    assert str(target) not in sys.path
    import importlib

    with pytest.raises(ImportError):
        importlib.import_module("dlc_probe_late")
    target.mkdir(parents=True)
    (target / "dlc_probe_late.py").write_text("VALUE = 42\n")
    assert folder.activate()
    assert sys.path[-1] == str(target)
    site_dirs = [i for i, p in enumerate(sys.path) if p.endswith(("site-packages", "dist-packages"))]
    assert site_dirs and max(site_dirs) < sys.path.index(str(target))
    assert importlib.import_module("dlc_probe_late").VALUE == 42
    folder.activate()
    assert sys.path.count(str(target)) == 1


def test_plugin_entry_puts_the_folder_on_sys_path(isolated):
    import deeplandcover

    folder.packages_dir().mkdir(parents=True)
    deeplandcover._add_plugin_packages()
    assert str(folder.packages_dir()) in sys.path


def test_requirements_for_each_set():
    inference = plan.requirements_for("inference")
    assert deps.ONNXRUNTIME in inference and deps.GEOPANDAS in inference and deps.TORCH not in inference
    assert len(inference) == len(set(inference))
    training = plan.requirements_for("training")
    assert deps.TORCH in training and set(inference) <= set(training)
    dask = deps.Requirement("dlcdask", ("dlcdask",), "2023.1")
    assert plan.requirements_for("all", (dask,))[-1] == dask
    assert dask not in plan.requirements_for("training", (dask,))
    from deeplandcover.algorithms.classify_batch import ClassifyBatchAlgorithm

    assert set(ClassifyBatchAlgorithm.REQUIREMENTS) <= set(plan.requirements_for("all", (dask,)))
    with pytest.raises(InputError):
        plan.requirements_for("some")


def test_plan_installs_only_what_is_missing(isolated):
    target = folder.packages_dir()
    ghost = deps.Requirement("dlcghostpkg", ("dlcghostpkg",), "1.2")
    too_old_in_qgis = deps.Requirement("numpy", ("numpy",), "999")
    fake_dist(target, "dlc-probe-old", "1.0")  # too old but in the plugin folder: reinstalled
    sys.path.append(str(target))
    import importlib

    importlib.invalidate_caches()
    in_target = deps.Requirement("dlc_probe_old", ("dlc-probe-old",), "2.0")
    p = plan.plan([deps.NUMPY, ghost, too_old_in_qgis, in_target], gpu="cpu", extra_specs=["tomli-w"])
    assert p.target == target
    assert p.specs == ["dlcghostpkg>=1.2", "dlc-probe-old>=2.0", "tomli-w"]
    assert any(s.startswith("numpy ") for s in p.satisfied)
    assert len(p.unfixable) == 1 and "QGIS's Python" in p.unfixable[0] and "numpy" in p.unfixable[0]


def test_plan_constrains_a_package_that_needs_what_qgis_has_too_old(tmp_path, isolated):
    """attrs 22 in QGIS's Python is enough for affine 2, not affine 3 (deps.ATTRS): pip gets affine<3."""
    if "only_with" not in getattr(deps.Requirement, "__dataclass_fields__", {}):
        pytest.skip("deps.Requirement has no only_with")
    qgis_site = tmp_path / "qgis-site"
    fake_dist(qgis_site, "dlcattrs", "22.2.0")
    sys.path.append(str(qgis_site))
    attrs = deps.Requirement("dlcattrs", ("dlcattrs",), "23.2", only_with=("dlcaffine", "3"))
    p = plan.plan([attrs], gpu="cpu")
    assert p.constraints == ["dlcaffine<3"] and not p.specs and not p.unfixable
    import shutil

    shutil.rmtree(qgis_site / "dlcattrs-22.2.0.dist-info")
    fake_dist(qgis_site, "dlcattrs", "23.2.0")
    assert plan.plan([attrs], gpu="cpu").constraints == []


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
