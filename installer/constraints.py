"""What the running Python provides, and the pip constraints file that pins all of it.

Every distribution on ``sys.path`` (but the plugin's own folder) is pinned, not only the few of
``deps.qgis_pins()``: the package docstring (:mod:`deeplandcover.installer`) says why the two differ.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..core import deps
from ..core.deps import pinnable_version
from .names import canonical_name, same_path

#: Wheels of Qt and QScintilla that come with PyQt from pip; QGIS has its own build of them.
_QT_WHEELS = ("PyQt5-Qt5", "PyQt6-Qt6", "QScintilla", "PyQt5-QScintilla", "PyQt6-QScintilla")
#: Distributions that belong to QGIS: never installed into the plugin folder, even when QGIS's Python
#: lacks them (a second PyQt/sip in the QGIS process crashes it; GDAL must be QGIS's build). They are
#: ``deps.QGIS_PROVIDED`` and the Qt wheels, less NumPy: a NumPy that QGIS's Python lacks is installed
#: like any other missing package (one that it has is provided, so never installed either).
QGIS_OWNED = (*(d for d in deps.QGIS_PROVIDED if canonical_name(d) != "numpy"), *_QT_WHEELS)
#: Pinned by name in the constraints even if not importable by name elsewhere (numpy is also pinned
#: like every other provided distribution; listed here because it matters most: compiled wheels).
ALWAYS_PINNED = ("numpy", *QGIS_OWNED)

_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)  # PEP 508 name


@dataclass(frozen=True)
class Provided:
    """A distribution the running Python provides (the first one of that name on its path).

    Attributes:
        name: the distribution name as its metadata spells it (``GDAL``).
        version: its version string, as reported (may be unparseable).
        location: the ``sys.path`` entry that holds it.
    """

    name: str
    version: str
    location: str


def provided_distributions(
    path: Sequence[str] | None = None, exclude: Iterable[str | os.PathLike] = ()
) -> dict[str, Provided]:
    """Distributions the running Python provides, by canonical name.

    Args:
        path: folders to scan (default ``sys.path``, in order: the first copy of a name is the one
            ``import`` finds, so later copies are ignored).
        exclude: folders whose distributions do not count (the plugin's own target folder).

    Returns:
        ``{canonical name: Provided}``; distributions with broken metadata (no name) are skipped.
    """
    excluded = [os.fspath(e) for e in exclude]
    found: dict[str, Provided] = {}
    dists = md.distributions(path=list(path)) if path is not None else md.distributions()
    for dist in dists:
        try:
            name = dist.metadata["Name"]
            version = dist.version or ""
            location = os.fspath(dist.locate_file(""))
        except Exception:  # unreadable metadata: skip it, never fail an install over it
            continue
        if not name or any(same_path(location, e) for e in excluded):
            continue
        found.setdefault(canonical_name(name), Provided(name, version, location))
    return found


def constraints_text(path: Sequence[str] | None = None, exclude: Iterable[str | os.PathLike] = ()) -> str:
    """A pip constraints file that pins everything the running Python provides.

    Every distribution found by :func:`provided_distributions` is pinned ``name==version``, not only
    numpy, GDAL and PyQt: the plugin folder comes after QGIS's site-packages on ``sys.path``, so a
    different version of any provided package installed there would never be imported, and pip would
    have resolved the new packages against a version that is not the one that runs (e.g. a new
    shapely wheel against a NumPy QGIS does not have). With everything pinned pip resolves against
    exactly what QGIS imports; when that is impossible pip says which package conflicts, instead of
    silently installing a copy that loses to QGIS's.

    Versions that cannot be pinned (see :func:`deeplandcover.core.deps.pinnable_version`, e.g. Debian's ``0+unknown``), and
    names that are not valid requirement names, are listed in a comment and left out: ``===`` would pin the literal string, which no index offers, so
    any requirement on the package would fail. They are still never installed: :func:`.install.install`
    drops every provided distribution, whatever its version, from what pip resolved.

    Args:
        path: folders to scan (default ``sys.path``).
        exclude: folders whose distributions are not pinned (the plugin's own target folder).

    Returns:
        The file's text, one requirement per line, sorted by name.
    """
    provided = provided_distributions(path, exclude)
    pins, skipped = [], []
    for key in sorted(provided):
        p = provided[key]
        ok = pinnable_version(p.version) and _NAME.match(p.name) is not None
        (pins if ok else skipped).append(p)
    lines = [
        "# Deep Land Cover: what the Python that runs QGIS already provides, pinned so that pip never",
        f"# installs another version of it (Python {sys.version.split()[0]}, {sys.executable}).",
    ]
    if skipped:
        lines.append(
            "# Not pinned (version not usable as a pin): " + ", ".join(f"{p.name} {p.version!r}" for p in skipped)
        )
    lines += [f"{p.name}=={p.version.strip()}" for p in pins]
    return "\n".join(lines) + "\n"


def write_constraints(
    file: str | os.PathLike, path: Sequence[str] | None = None, exclude: Iterable[str | os.PathLike] = ()
) -> Path:
    """Write :func:`constraints_text` to ``file`` (parent folders created) and return its path.

    Raises:
        OSError: the file cannot be written.
    """
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(constraints_text(path, exclude), encoding="utf-8")
    return file
