"""Tests of installer.plan: what to install for each set, what is already there, the build and index chosen."""

from __future__ import annotations

import sys

import pytest

from deeplandcover.core import deps
from deeplandcover.core.errors import InputError
from deeplandcover.installer import folder, gpu, plan
from deeplandcover.installer.gpu import BuildChoice

from .installer_helpers import fake_dist, isolated  # noqa: F401  (fixtures)


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


def test_plan_names_the_choice_and_the_index(monkeypatch):
    monkeypatch.delenv(gpu.ENV_TORCH_INDEX, raising=False)
    p = plan.plan([], gpu="cpu", extra_specs=["torch>=2.1"], torch_index_setting="https://mirror.example/cpu")
    assert p.index_args == ["--extra-index-url", "https://mirror.example/cpu"]
    assert p.build == BuildChoice("cpu", False, "https://mirror.example/cpu")
    assert p.build.text() == "GPU: CPU only" and "https://mirror.example/cpu" in p.build.index_text()
    assert BuildChoice("auto", False).text() == "GPU: Auto (no NVIDIA GPU found)"
