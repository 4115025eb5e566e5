"""``make package``: the plugin ZIP holds the plugin's packages and leaves out tools/, tests/, CI, the benchmarks,
data and weights.

The ZIP is built by tools/dev/package.py, as the Makefile does, but from the working tree (``--worktree``:
a temporary index, so uncommitted files count and HEAD and the real index stay as they are).
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile

import pytest

from deeplandcover.tests.helpers.repository import DATA_SUFFIXES, REPO, plugin_packages
from deeplandcover.tools.dev import package

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(),
    reason="needs git and a git checkout (make package uses git archive)",
)

MAX_BYTES = 2 * 1024 * 1024  # measured 2026-12-01: about 0.8 MiB
#: Never in the ZIP: the developer tools, the tests, CI, the benchmark figures, data.
LEFT_OUT = ("tools/", "tests/", ".ci/", "data/")


def _names(zpath) -> set[str]:
    """The ZIP's paths below ``deeplandcover/`` (folders end with ``/``)."""
    names = zipfile.ZipFile(zpath).namelist()
    assert names and all(n.startswith(package.PREFIX) for n in names)
    return {n[len(package.PREFIX) :] for n in names}


def _check_file_list(rel: set[str]) -> None:
    """Every plugin package and the entry files in, nothing of :data:`LEFT_OUT`, no data or weight file."""
    for f in (
        "metadata.txt",
        "__init__.py",
        "plugin.py",
        "LICENSE",
        "resources/",
        *(f"{p}/" for p in plugin_packages()),
    ):
        assert f in rel, f"{f} is missing from the plugin ZIP"
    assert [n for n in rel if n.startswith("core/") and n.endswith(".py")]
    left_in = sorted(n for n in rel if n.startswith(LEFT_OUT) or n in ("tools", "tests", "BENCHMARKS.md"))
    assert not left_in, f"in the plugin ZIP but not the plugin's: {left_in[:10]}"
    assert not [n for n in rel if n.lower().endswith(DATA_SUFFIXES)], "data or weight files in the ZIP"


@pytest.fixture(scope="module")
def worktree(tmp_path_factory):
    """(tree id of the working tree, the ZIP built from it)."""
    tree = package.worktree_tree()
    return tree, package.build(tmp_path_factory.mktemp("package") / "deeplandcover.zip", tree)


def test_makefile_uses_tools_package():
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    dry = subprocess.run(["make", "-n", "package"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "tools/dev/package.py dist/deeplandcover.zip" in dry and "git archive" not in dry


def test_zip_file_list_and_size(worktree):
    tree, zpath = worktree
    _check_file_list(_names(zpath))
    # the exclusion is real: the archived tree has the tools and the tests, the ZIP has not
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-tree", "-r", "--name-only", tree], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert {"tests/test_package.py", "tools/dev/package.py", "BENCHMARKS.md"} <= set(listed)
    assert zpath.stat().st_size < MAX_BYTES, f"plugin ZIP is {zpath.stat().st_size / 1024:.0f} KiB"


def test_file_list_check_sees_a_tool_left_in(worktree):
    rel = _names(worktree[1])
    with pytest.raises(AssertionError, match="tools/demo/run.py"):
        _check_file_list(rel | {"tools/", "tools/demo/run.py"})
    with pytest.raises(AssertionError, match="provider/ is missing"):
        _check_file_list(rel - {"provider/"})


def test_zip_of_head_has_the_same_exclusions(tmp_path):
    zpath = package.build(tmp_path / "head.zip")  # exactly what `make package` writes to dist/
    rel = _names(zpath)
    assert "metadata.txt" in rel and "core/" in rel
    assert not [n for n in rel if n.startswith(LEFT_OUT) or n == "BENCHMARKS.md"]
