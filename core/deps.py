"""Checks that the optional Python packages an operation needs are installed and recent enough.

Nothing here imports the packages it checks: versions come from :mod:`importlib.metadata`, so the
Processing provider can report a missing runtime (``canExecute()``) without loading torch or
onnxruntime on every ``qgis_process`` call.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
from dataclasses import dataclass

from .errors import DependencyError


@dataclass(frozen=True)
class Requirement:
    """One package requirement.

    Attributes:
        import_name: module name used in ``import``.
        dists: distribution names that provide it, first one preferred in the install hint
            (``onnxruntime`` or ``onnxruntime-gpu`` both provide ``onnxruntime``).
        min_version: lowest accepted version, ``"1.16"``.
        max_version: first rejected version (exclusive), or None.
    """

    import_name: str
    dists: tuple[str, ...]
    min_version: str
    max_version: str | None = None

    @property
    def spec(self) -> str:
        """pip requirement specifier, e.g. ``onnxruntime>=1.16``."""
        s = f"{self.dists[0]}>={self.min_version}"
        return s + (f",<{self.max_version}" if self.max_version else "")


NUMPY = Requirement("numpy", ("numpy",), "1.23", "2")
RASTERIO = Requirement("rasterio", ("rasterio",), "1.3")
AFFINE = Requirement("affine", ("affine",), "2.3", "3")
ONNXRUNTIME = Requirement("onnxruntime", ("onnxruntime", "onnxruntime-gpu"), "1.16")
GEOPANDAS = Requirement("geopandas", ("geopandas",), "0.13")
SHAPELY = Requirement("shapely", ("shapely",), "2.0")
SCIPY = Requirement("scipy", ("scipy",), "1.9")
TORCH = Requirement("torch", ("torch",), "2.1")
ONNX = Requirement("onnx", ("onnx",), "1.14")
MATPLOTLIB = Requirement("matplotlib", ("matplotlib",), "3.5")

#: What each kind of operation needs. Inference never needs torch.
INFERENCE = (NUMPY, RASTERIO, AFFINE, ONNXRUNTIME)
VECTOR = (NUMPY, RASTERIO, AFFINE, GEOPANDAS, SHAPELY, SCIPY)
TRAINING = (NUMPY, RASTERIO, AFFINE, TORCH, ONNX, ONNXRUNTIME, MATPLOTLIB)
METRICS = (NUMPY, RASTERIO, AFFINE, GEOPANDAS, SHAPELY, MATPLOTLIB)


def _vtuple(version: str) -> tuple[int, ...]:
    parts = []
    for p in version.split("."):
        m = re.match(r"\d+", p)
        if not m:
            break
        parts.append(int(m.group()))
    return tuple(parts)


def installed_version(req: Requirement) -> str | None:
    """Version of the first installed distribution providing ``req``, or None."""
    for dist in req.dists:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            continue
    return None


def pip_command(specs: list[str]) -> str:
    """The command that installs ``specs`` into the Python QGIS runs.

    On Windows this is run from the OSGeo4W Shell, on Linux/macOS from a terminal (QGIS uses the
    system ``python3`` on Linux; on macOS use the ``python3`` inside the QGIS.app bundle).
    """
    quoted = " ".join(f'"{s}"' for s in specs)
    py = "python" if sys.platform.startswith("win") else "python3"
    return f"{py} -m pip install --user {quoted}"


def missing(requirements: tuple[Requirement, ...]) -> list[str]:
    """Human-readable problems, one per unmet requirement (empty when all are met)."""
    problems = []
    for req in requirements:
        v = installed_version(req)
        if v is None:
            problems.append(f"{req.import_name} is not installed (need {req.spec})")
        elif _vtuple(v) < _vtuple(req.min_version):
            problems.append(f"{req.import_name} {v} is too old (need {req.spec})")
        elif req.max_version and _vtuple(v) >= _vtuple(req.max_version):
            problems.append(f"{req.import_name} {v} is too new (need {req.spec})")
    return problems


def check(requirements: tuple[Requirement, ...], what: str = "This algorithm") -> None:
    """Raise when a requirement is unmet.

    Raises:
        DependencyError: naming every unmet package, the version needed and the pip command.
    """
    problems = missing(requirements)
    if problems:
        bad = [r.spec for r in requirements if any(p.startswith(r.import_name + " ") for p in problems)]
        raise DependencyError(
            f"{what} needs Python packages that are missing or the wrong version: "
            + "; ".join(problems)
            + f". Install them into QGIS's Python with: {pip_command(bad)} and restart QGIS."
        )
