"""What the plugin is made of: no sample data or weights in the repository, and the plugin (and its test suite)
never imports the developer tools of ``tools/``, which the plugin ZIP leaves out.

The ZIP itself (built by ``tools/dev/package.py``) is tested with the tools, in tools/tests/test_package.py.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers.repository import DATA_SUFFIXES, REPO, plugin_files, plugin_packages

MAX_TRACKED_BYTES = 1024 * 1024


def tools_imports(path: Path, repo: Path = REPO) -> list[str]:
    """``file:line`` of each import of the developer tools in ``path``: ``deeplandcover.tools...``, a bare
    ``tools...`` or a relative import that climbs to the repository root and goes into ``tools``."""
    rel = path.relative_to(repo).with_suffix("").parts
    package = list(rel[:-1])  # the package the module is in (for __init__.py: its own package)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            targets = [node.module or ""]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - (node.level - 1)] if node.level - 1 <= len(package) else None
            module = [] if base is None else [*base, *(node.module.split(".") if node.module else [])]
            targets = [".".join(["deeplandcover", *module])] if module else []
            if base == [] and not node.module:  # from .. import tools
                targets = [f"deeplandcover.{a.name}" for a in node.names]
        else:
            continue
        if any(t.split(".")[:2] == ["deeplandcover", "tools"] or t.split(".")[0] == "tools" for t in targets):
            found.append(f"{path.relative_to(repo)}:{node.lineno}")
    return found


def test_the_plugin_packages_are_found():
    assert {"algorithms", "core", "models", "provider"} <= set(plugin_packages())
    assert (REPO / "plugin.py") in plugin_files() and (REPO / "__init__.py") in plugin_files()


def test_the_plugin_never_imports_the_tools():
    """The ZIP leaves ``tools/`` out: an import of it would fail in every installed plugin."""
    found = [hit for p in plugin_files() for hit in tools_imports(p)]
    assert not found, f"the plugin imports tools/ (not in the plugin ZIP): {found}"


def test_the_test_suite_never_imports_the_tools():
    """The plugin's suite stands on the plugin alone; what it shares with the tools lives in tests/helpers."""
    found = [hit for p in sorted((REPO / "tests").rglob("*.py")) for hit in tools_imports(p)]
    assert not found, f"tests/ imports tools/ (their tests belong in tools/tests): {found}"


@pytest.mark.parametrize(
    ("where", "line", "hit"),
    [
        ("core/x.py", "from deeplandcover.tools.bench import common", True),
        ("core/x.py", "import tools.dev.package", True),
        ("core/raster/x.py", "from ...tools.demo import run", True),
        ("x.py", "from .tools import dev", True),
        ("tests/x.py", "from .. import tools", True),
        ("core/raster/x.py", "from ..tools import y", False),  # core.tools, not the developer tools
        ("core/x.py", "from deeplandcover.core import tools_like", False),
        ("tests/x.py", "from .helpers.qgis_run import REPO", False),
    ],
)
def test_tools_import_check_sees_every_form(tmp_path, where, line, hit):
    path = tmp_path / where
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(line + "\n", encoding="utf-8")
    assert bool(tools_imports(path, tmp_path)) is hit


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs git and a git checkout")
def test_no_data_or_weights_tracked_in_git():
    """Third-party data and weights live outside the repository (DLC_DATA, DLC_WEIGHTS_DIR, `make data`).

    Fails on any tracked file over 1 MiB and on any raster, vector, array, ONNX or weight file: the tests
    make their fixtures in temporary folders, so none is ever tracked.
    """
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    tracked = [p for p in out.decode().split("\0") if p]
    assert "README.md" in tracked, "git ls-files listed nothing"
    typed = [p for p in tracked if p.lower().endswith(DATA_SUFFIXES)]
    big = [p for p in tracked if (REPO / p).is_file() and (REPO / p).stat().st_size > MAX_TRACKED_BYTES]
    assert not typed, f"data or weight files tracked in git: {typed}"
    assert not big, f"files over 1 MiB tracked in git: {big}"
    assert not [p for p in tracked if p.startswith("data/")], "data/ is back in the repository"
