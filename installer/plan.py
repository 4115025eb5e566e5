"""What to install: the requirements of the chosen algorithms, less what is already met.

Nothing is installed or run here but ``nvidia-smi`` (:func:`.gpu.use_gpu`); :func:`plan` returns
the pip specifiers and constraints that :func:`.install.install` is then given.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..core import deps
from ..core.errors import InputError
from .folder import packages_dir
from .gpu import BuildChoice, index_args_for, torch_index, use_gpu
from .names import canonical_name, same_path

#: The sets offered by the Processing algorithm, see :func:`requirements_for`.
WHAT_CHOICES = ("inference", "training", "all")


def requirements_for(what: str, extra: Sequence[deps.Requirement] = ()) -> tuple[deps.Requirement, ...]:
    """The requirements of a set of algorithms, without duplicates.

    Args:
        what: ``"inference"`` (Classify Pixels, Detect Change, Export Training Tiles, accuracy:
            ``deps.INFERENCE``, ``deps.VECTOR``, ``deps.METRICS``), ``"training"`` (adds
            ``deps.TRAINING``) or ``"all"`` (adds ``deps.BATCH`` where it exists, and ``extra``: the
            Processing layer passes Classify Pixels (Batch)'s own ``REQUIREMENTS``).
        extra: requirements added for ``"all"``.

    Raises:
        InputError: ``what`` is none of :data:`WHAT_CHOICES`.
    """
    if what not in WHAT_CHOICES:
        raise InputError(f"What to install must be one of {', '.join(WHAT_CHOICES)}, not {what!r}.")
    groups = [deps.INFERENCE, deps.VECTOR, deps.METRICS]
    if what in ("training", "all"):
        groups.append(deps.TRAINING)
    if what == "all":
        groups += [tuple(getattr(deps, "BATCH", ())), tuple(extra)]
    out: list[deps.Requirement] = []
    for group in groups:
        out += [r for r in group if r not in out]
    return tuple(out)


@dataclass
class Plan:
    """What :func:`.install.install` should be asked to install (see :func:`plan`).

    Attributes:
        target: the plugin's package folder.
        specs: pip requirement specifiers of what is missing (``onnxruntime-gpu>=1.16``).
        satisfied: requirements already met, as ``"numpy 1.26.4"``.
        unfixable: requirements met by a wrong version in QGIS's own Python, which comes first on
            ``sys.path`` so an install into the plugin folder would not help; one message each.
        gpu: whether the GPU builds were chosen.
        index_args: extra pip index options (see :func:`.gpu.index_args_for`).
        build: the GPU choice and torch's index, for :func:`.install.install` (its CUDA check and messages).
        constraints: extra constraint lines for pip (``affine<3`` when QGIS's Python has an attrs
            too old for affine 3, see ``Requirement.only_with``), for :func:`.install.install`.
    """

    target: Path
    specs: list[str] = field(default_factory=list)
    satisfied: list[str] = field(default_factory=list)
    unfixable: list[str] = field(default_factory=list)
    gpu: bool = False
    index_args: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    build: BuildChoice = field(default_factory=BuildChoice)


def _find_dist(dists: Sequence[str]) -> md.Distribution | None:
    for name in dists:
        try:
            return md.distribution(name)
        except md.PackageNotFoundError:
            continue
    return None


def _spec(req: deps.Requirement, gpu: bool) -> str:
    spec = req.spec
    if gpu and "onnxruntime-gpu" in req.dists and req.dists[0] != "onnxruntime-gpu":
        if sys.platform == "darwin":
            return spec  # no onnxruntime-gpu for macOS; CoreML is in the plain build
        spec = re.sub(rf"^{re.escape(req.dists[0])}(?![\w.-])", "onnxruntime-gpu", spec)
    return spec


def plan(
    requirements: Sequence[deps.Requirement],
    *,
    gpu: str = "auto",
    extra_specs: Sequence[str] = (),
    target: str | os.PathLike | None = None,
    torch_index_setting: str | None = None,
) -> Plan:
    """Which of ``requirements`` need installing (nothing is run but ``nvidia-smi``).

    A requirement already met (``deps.missing``) is skipped, except ``onnxruntime`` when the GPU is
    chosen and the CPU build sits in the plugin folder (it is then replaced by ``onnxruntime-gpu``).
    One met with a wrong version in the plugin folder is reinstalled; one met with a wrong version in
    QGIS's Python is reported in :attr:`Plan.unfixable`.

    Args:
        requirements: what the chosen algorithms need (see :func:`requirements_for`).
        gpu: ``"auto"``, ``"gpu"`` or ``"cpu"`` (see :func:`.gpu.use_gpu`).
        extra_specs: pip requirement specifiers added as they are (pip skips them when met).
        target: the plugin's package folder (default :func:`.folder.packages_dir`).
        torch_index_setting: the *Torch package index* option (a URL, ``"pypi"``, or empty for the
            default: see :func:`.gpu.torch_index`).

    Raises:
        InputError: ``gpu`` is not a valid choice.
    """
    target = Path(packages_dir() if target is None else target)
    p = Plan(target=target, gpu=use_gpu(gpu))
    for req in requirements:
        dist = _find_dist(req.dists)
        in_target = dist is not None and same_path(os.fspath(dist.locate_file("")), target)
        problems = deps.missing((req,))
        spec = _spec(req, p.gpu)
        if not problems:
            if dist is None:
                continue  # not needed here (``only_with`` a version of another package that is absent)
            name = dist.metadata["Name"]
            cpu_ort_in_target = (
                in_target and canonical_name(name) == "onnxruntime" and p.gpu and spec.startswith("onnxruntime-gpu")
            )
            if not cpu_ort_in_target:
                p.satisfied.append(f"{name} {dist.version}")
                continue
        elif dist is not None and not in_target:
            where = os.fspath(dist.locate_file(""))
            p.unfixable.append(
                f"{problems[0]}: it is installed in {where}, which QGIS's Python searches before the "
                "plugin's folder, so a copy there would not be used. Upgrade it in QGIS's Python "
                "(OSGeo4W Setup on Windows, the package manager or pip on Linux/macOS)."
            )
            continue
        if spec not in p.specs:
            p.specs.append(spec)
    p.specs += [s for s in extra_specs if s and s not in p.specs]
    p.index_args = index_args_for(p.specs, p.gpu, torch_index_setting)
    p.build = BuildChoice(gpu, p.gpu, torch_index(p.gpu, torch_index_setting) if p.index_args else "")
    p.constraints = _conditional_constraints(requirements, target)
    return p


def _conditional_constraints(requirements: Sequence[deps.Requirement], target: Path) -> list[str]:
    """``X<v`` for each requirement needed only with ``X>=v`` (``only_with``) that QGIS's Python
    fails and the plugin folder cannot fix (it is shadowed): keeps pip from bringing in that ``X``."""
    out = []
    for req in requirements:
        only_with = getattr(req, "only_with", None)
        if not only_with:
            continue
        dist = _find_dist(req.dists)
        if dist is None or same_path(os.fspath(dist.locate_file("")), target):
            continue
        other = _find_dist((only_with[0],))
        if other is not None and not same_path(os.fspath(other.locate_file("")), target):
            continue  # QGIS's Python has it: pinned, and reported by plan() when it is too new
        if deps.missing((dataclasses.replace(req, only_with=None),)):
            line = f"{only_with[0]}<{only_with[1]}"
            if line not in out:
                out.append(line)
    return out
