"""Load the pip wheels of the geospatial libraries so that they keep their own GDAL/PROJ/GEOS.

On Linux, QGIS executables (desktop QGIS, qgis_process) link the system GDAL, PROJ and GEOS into the
global symbol scope. The PyPI wheels of rasterio, shapely, pyproj, pyogrio and fiona bundle their
own copies of those libraries; when such a wheel is loaded into a QGIS process, the dynamic linker
resolves the bundled library's C/C++ symbols to the system copies first. The result is silent
corruption (shapely returning empty geometries, "WKT output dimension must be 2 or 3") or a crash
on exit (double free in libproj's destructors). Loading every extension module of those packages
with ``RTLD_DEEPBIND`` makes each bundled library prefer its own symbols.

This matters only inside a QGIS executable on Linux; :func:`isolate_geolibs` is a no-op elsewhere
and when the packages are not wheels (e.g. Debian's python3-rasterio, linked to the system libraries).
It must run before anything imports those packages, so Processing algorithms call it first.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

PACKAGES = ("shapely", "pyproj", "pyogrio", "fiona", "rasterio")
_done = False


def _bundles_libs(pkg_dir: Path) -> bool:
    """True for a manylinux wheel (auditwheel puts the bundled libraries in ``<pkg>.libs``)."""
    return (pkg_dir.parent / f"{pkg_dir.name}.libs").is_dir()


def _extension_modules(name: str) -> list[str]:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations)))
    if not _bundles_libs(root):
        return []
    mods = []
    for so in sorted(root.rglob("*.so")):
        rel = so.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts)
        parts[-1] = parts[-1].split(".")[0]  # _io.cpython-311-x86_64-linux-gnu -> _io
        if "tests" not in parts:
            mods.append(".".join(parts))
    return mods


def isolate_geolibs() -> list[str]:
    """Import the geospatial wheels' extension modules with ``RTLD_DEEPBIND`` (once per process).

    Returns:
        The extension modules loaded this way (empty when nothing needed it).
    """
    global _done
    if _done or not sys.platform.startswith("linux") or not hasattr(os, "RTLD_DEEPBIND"):
        return []
    _done = True
    if any(p in sys.modules for p in PACKAGES):
        # too late for a package already imported without isolation; isolate the others
        pass
    loaded: list[str] = []
    flags = sys.getdlopenflags()
    sys.setdlopenflags(os.RTLD_NOW | os.RTLD_DEEPBIND)
    try:
        for pkg in PACKAGES:
            if pkg in sys.modules:
                continue
            for mod in _extension_modules(pkg):
                try:
                    importlib.import_module(mod)
                    loaded.append(mod)
                except Exception:  # an optional extension (e.g. needs a missing extra): skip it
                    continue
    finally:
        sys.setdlopenflags(flags)
    return loaded
