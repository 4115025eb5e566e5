"""Checks that the optional Python packages an operation needs are installed and recent enough.

Nothing here imports the packages it checks: versions come from :mod:`importlib.metadata`, and
:func:`importlib.util.find_spec` says whether the package can be imported (found on ``sys.path``
without running it), so the Processing provider can report a missing runtime (``canExecute()``)
without loading torch or onnxruntime on every ``qgis_process`` call.

There are lower bounds only. An upper bound is set only for a measured incompatibility, with the
reason beside it (:attr:`Requirement.max_reason`); today there is none: the plugin runs with NumPy 1
and 2, affine 2 and 3, rasterio 1.3-1.5, geopandas 0.14-1.2 and pandas 2-3.

A version string that is not a number (Debian's ``python3-shapely`` 2.2 reports ``0+unknown``) is
not a reason to refuse: the check then warns and goes on (:func:`check` returns the warnings).

The install hint fits the system QGIS runs on: Debian's / Ubuntu's ``apt`` line where QGIS uses the
distribution's Python (whose packages share QGIS's GDAL, GEOS and PROJ), else the plugin's *Install
Python dependencies* algorithm, or a pip line that pins what QGIS already provides (NumPy, GDAL), so
pip never replaces them. It says what the installer says: its packages can be used at once, without
restarting QGIS; after a command run by hand, QGIS is restarted.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import re
import sys
from dataclasses import dataclass

from .errors import DependencyError

#: The Processing id of the algorithm that installs missing packages into a plugin-owned folder.
INSTALLER_ALGORITHM = "deeplandcover:installdependencies"

#: Distributions that QGIS ships and that pip must never install, upgrade or downgrade inside QGIS.
QGIS_PROVIDED = ("numpy", "GDAL", "PyQt5", "PyQt6", "sip", "PyQt5-sip", "PyQt6-sip")


@dataclass(frozen=True)
class Requirement:
    """One package requirement.

    Attributes:
        import_name: module name used in ``import``.
        dists: distribution names that provide it, first one preferred in the install hint
            (``onnxruntime`` or ``onnxruntime-gpu`` both provide ``onnxruntime``).
        min_version: lowest accepted version, ``"1.16"``.
        max_version: first rejected version (exclusive), or None. Only for a measured
            incompatibility, explained in ``max_reason``.
        debian: the Debian/Ubuntu package that provides it (``python3-onnxruntime``), or "".
        max_reason: why ``max_version`` is there (shown to the user).
        only_with: ``(dist, version)``: checked only when that distribution is installed at that
            version or newer (a need that comes with another package's major version), else always.
    """

    import_name: str
    dists: tuple[str, ...]
    min_version: str
    max_version: str | None = None
    debian: str = ""
    max_reason: str = ""
    only_with: tuple[str, str] | None = None

    @property
    def spec(self) -> str:
        """pip requirement specifier, e.g. ``onnxruntime>=1.16``."""
        s = f"{self.dists[0]}>={self.min_version}"
        return s + (f",<{self.max_version}" if self.max_version else "")


NUMPY = Requirement("numpy", ("numpy",), "1.23", debian="python3-numpy")
RASTERIO = Requirement("rasterio", ("rasterio",), "1.3", debian="python3-rasterio")
AFFINE = Requirement("affine", ("affine",), "2.3", debian="python3-affine")
ONNXRUNTIME = Requirement("onnxruntime", ("onnxruntime", "onnxruntime-gpu"), "1.16", debian="python3-onnxruntime")
GEOPANDAS = Requirement("geopandas", ("geopandas",), "0.13", debian="python3-geopandas")
SHAPELY = Requirement("shapely", ("shapely",), "2.0", debian="python3-shapely")
SCIPY = Requirement("scipy", ("scipy",), "1.9", debian="python3-scipy")
TORCH = Requirement("torch", ("torch",), "2.1", debian="python3-torch")
ONNX = Requirement("onnx", ("onnx",), "1.14", debian="python3-onnx")
MATPLOTLIB = Requirement("matplotlib", ("matplotlib",), "3.5", debian="python3-matplotlib")
#: affine 3 caches a property on a slotted attrs class, which attrs supports from 23.2 although affine's
#: metadata asks for attrs>=21.3 only. Measured: affine 3.0.1 with Debian 12's attrs 22.2 fails on
#: ``tuple(Affine(...))`` (rasterio's windows and features code does that); attrs 23.2 works.
ATTRS = Requirement("attrs", ("attrs",), "23.2", debian="python3-attr", only_with=("affine", "3"))
DASK = Requirement("dask", ("dask",), "2023.1", debian="python3-dask")
DISTRIBUTED = Requirement("distributed", ("distributed",), "2023.1", debian="python3-distributed")

#: What each kind of operation needs. Inference never needs torch.
INFERENCE = (NUMPY, RASTERIO, AFFINE, ATTRS, ONNXRUNTIME)
VECTOR = (NUMPY, RASTERIO, AFFINE, ATTRS, GEOPANDAS, SHAPELY, SCIPY)
TRAINING = (NUMPY, RASTERIO, AFFINE, ATTRS, TORCH, ONNX, ONNXRUNTIME, MATPLOTLIB)
METRICS = (NUMPY, RASTERIO, AFFINE, ATTRS, GEOPANDAS, SHAPELY, MATPLOTLIB)
BATCH = (*INFERENCE, DASK, DISTRIBUTED)


def parse_version(version: str) -> tuple[int, ...] | None:
    """The release numbers of ``version`` (``"2.2.4"`` -> ``(2, 2, 4)``, ``"2.1.0rc1"`` -> ``(2, 1, 0)``).

    Returns None for a version that says nothing: no leading number, or a release of zeros only with
    or without a local label (``"0+unknown"``, ``"0.0.0"``), as some distribution builds report.
    """
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", version or "")
    if not m:
        return None
    parts = tuple(int(p) for p in m.group(1).split("."))
    return None if not any(parts) else parts


def installed_version(req: Requirement) -> str | None:
    """Version of the first installed distribution providing ``req``, or None."""
    for dist in req.dists:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            continue
    return None


def _status(req: Requirement, importable: bool = False) -> tuple[str | None, str | None]:
    """``(problem, warning)`` for one requirement; both None when it is met.

    With ``importable``, a package whose metadata is there must also be found by ``import`` (a broken
    install, or a folder that is not on ``sys.path``, is then a problem, not a traceback at run time).
    """
    if req.only_with is not None:
        other = installed_version(Requirement(req.only_with[0], (req.only_with[0],), "0"))
        other_v = parse_version(other) if other else None
        if other_v is None or other_v < parse_version(req.only_with[1]):
            return None, None
    v = installed_version(req)
    if v is None:
        return f"{req.import_name} is not installed (need {req.spec})", None
    parsed = parse_version(v)
    if parsed is None:
        return None, (
            f"{req.import_name} reports the version {v!r}, which is not a number; assuming it meets {req.spec}"
        )
    if parsed < parse_version(req.min_version):
        return f"{req.import_name} {v} is too old (need {req.spec})", None
    if req.max_version and parsed >= parse_version(req.max_version):
        why = f": {req.max_reason}" if req.max_reason else ""
        return f"{req.import_name} {v} is too new (need {req.spec}{why})", None
    not_importable = _not_importable(req.import_name) if importable else None
    if not_importable:
        return f"{req.import_name} {v} is installed but cannot be imported ({not_importable})", None
    return None, None


def _not_importable(name: str) -> str | None:
    """Why the module ``name`` cannot be imported (found without being run), or None when it can."""
    if name in sys.modules:
        return None
    try:
        return None if importlib.util.find_spec(name) is not None else "not found on Python's search path"
    except (ImportError, ValueError) as e:
        return str(e) or type(e).__name__


def missing(requirements: tuple[Requirement, ...]) -> list[str]:
    """Human-readable problems, one per unmet requirement (empty when all are met)."""
    return [p for p, _ in map(_status, requirements) if p]


def unverified(requirements: tuple[Requirement, ...]) -> list[str]:
    """Warnings for installed requirements whose version could not be read as a number."""
    return [w for _, w in map(_status, requirements) if w]


def _os_release() -> dict[str, str]:
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            pairs = (line.rstrip("\n").split("=", 1) for line in f if "=" in line)
            return {k: v.strip('"') for k, v in pairs}
    except OSError:
        return {}


def uses_debian_python() -> bool:
    """True when this Python is a Debian/Ubuntu system Python (``/usr``), whose packages come from apt."""
    if not sys.platform.startswith("linux"):
        return False
    rel = _os_release()
    family = {rel.get("ID", ""), *rel.get("ID_LIKE", "").split()}
    return bool(family & {"debian", "ubuntu"}) and os.path.realpath(sys.base_prefix) == "/usr"


# PEP 440 (the regex of the specification's appendix, as ``packaging`` uses it).
_PEP440 = re.compile(
    r"^\s*v?(?:(?:[0-9]+!)?(?P<release>[0-9]+(?:\.[0-9]+)*)"
    r"(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?"
    r"(?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?"
    r"(?:[-_.]?dev[-_.]?[0-9]*)?)"
    r"(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?\s*$",
    re.IGNORECASE,
)


def pinnable_version(version: str | None) -> bool:
    """True when ``version`` can be pinned with ``==`` in a constraints file.

    False for a version that is not PEP 440 (``1.0~rc1``, ``unknown``) and for a placeholder whose
    release is all zeros (``0+unknown``, ``0.0.0``: what Debian reports when a package was built
    without its version). Pinning a placeholder would make every ``>=`` requirement on it unsatisfiable.
    """
    if not version:
        return False
    m = _PEP440.match(version)
    return bool(m) and any(int(p) for p in m.group("release").split("."))


def qgis_pins() -> list[str]:
    """``name==version`` of what QGIS provides and pip must leave alone (only installed ones)."""
    pins = []
    for dist in QGIS_PROVIDED:
        try:
            v = md.version(dist)
        except md.PackageNotFoundError:
            continue
        if pinnable_version(v):
            pins.append(f"{dist}=={v}")
    return pins


def pip_command(specs: list[str]) -> str:
    """A pip line that installs ``specs`` into the Python QGIS runs, with what QGIS ships pinned.

    The pins (``numpy==<installed>``, ``GDAL==<installed>``) are already satisfied, so pip installs the
    missing packages around them instead of replacing QGIS's own NumPy or GDAL. On Windows this is run
    from the OSGeo4W Shell; on macOS with the ``python3`` inside ``QGIS.app/Contents/MacOS/bin``.
    """
    quoted = " ".join(f'"{s}"' for s in [*specs, *qgis_pins()])
    if sys.platform.startswith("win"):
        return f"python -m pip install {quoted}"
    if sys.platform == "darwin":
        return f"/Applications/QGIS.app/Contents/MacOS/bin/python3 -m pip install --user {quoted}"
    return f"python3 -m pip install --user {quoted}"


def apt_command(requirements: list[Requirement]) -> str | None:
    """``sudo apt install python3-...`` for ``requirements``, or None when one has no Debian package."""
    names = [r.debian for r in requirements]
    return "sudo apt install " + " ".join(names) if all(names) else None


def install_hint(requirements: list[Requirement]) -> str:
    """The commands that install ``requirements`` on this system, as one sentence for a message."""
    installer = (
        f"run Deep Land Cover > Install Python dependencies ({INSTALLER_ALGORITHM}) from the Processing Toolbox "
        "(no restart needed)"
    )
    apt = apt_command(requirements) if uses_debian_python() else None
    if apt:
        return (
            f"Install them with Debian's packages, which match QGIS's own GDAL and NumPy: {apt}, then restart "
            f"QGIS; or {installer}."
        )
    where = "in the OSGeo4W Shell " if sys.platform.startswith("win") else ""
    return f"Install them: {installer}, or {where}run {pip_command([r.spec for r in requirements])}, then restart QGIS."


def check(requirements: tuple[Requirement, ...], what: str = "This algorithm") -> list[str]:
    """Raise when a requirement is unmet; return warnings for versions that could not be checked.

    Returns:
        One warning per installed package whose version is not a number (it is assumed to be fine).

    Raises:
        DependencyError: naming every unmet package, the version needed and the command that installs
            it on this system.
    """
    status = [(r, *_status(r, importable=True)) for r in requirements]
    problems = [p for _, p, _ in status if p]
    if problems:
        bad = [r for r, p, _ in status if p]
        raise DependencyError(
            f"{what} needs Python packages that are missing or the wrong version: "
            + "; ".join(problems)
            + ". "
            + install_hint(bad)
        )
    return [w for _, _, w in status if w]


def main(argv: list[str] | None = None) -> int:
    """``python -m deeplandcover.core.deps constraints``: print a pip constraints file of what this
    Python's QGIS ships (one ``name==version`` a line), for ``pip install -c``."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["constraints"]:
        print("usage: python -m deeplandcover.core.deps constraints", file=sys.stderr)
        return 2
    print("# What QGIS ships in this Python: pip must not install, upgrade or downgrade it.")
    print("\n".join(qgis_pins()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
