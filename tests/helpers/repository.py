"""The repository and what of it is the plugin (the folders of the plugin ZIP), for the tests and the tools."""

from __future__ import annotations

from pathlib import Path

#: The repository root: the plugin folder (``deeplandcover``), with tests/ and tools/ beside the plugin's packages.
REPO = Path(__file__).resolve().parents[2]
#: Files that hold data or weights: never tracked (tests make their fixtures in tmp), never in the ZIP.
DATA_SUFFIXES = (".tif", ".tiff", ".jp2", ".gpkg", ".geojson", ".shp", ".npy", ".onnx", ".pt", ".pth", ".ckpt", ".pb")
#: Folders of the repository that are not the plugin (never in the ZIP).
NOT_PLUGIN = ("tests", "tools")


def plugin_packages(repo: Path = REPO) -> list[str]:
    """The plugin's top-level packages: every folder of the repository root with an ``__init__.py`` but
    :data:`NOT_PLUGIN` (``algorithms``, ``core``, ``models``, ``provider``, ...)."""
    return sorted(p.parent.name for p in repo.glob("*/__init__.py") if p.parent.name not in NOT_PLUGIN)


def plugin_files(repo: Path = REPO) -> list[Path]:
    """Every Python file of the plugin: its packages and the modules at the repository root."""
    files = [p for d in plugin_packages(repo) for p in sorted((repo / d).rglob("*.py"))]
    return files + sorted(repo.glob("*.py"))
