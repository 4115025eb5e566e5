"""``make package``: the plugin ZIP holds the plugin and leaves out tests/, CI, the benchmarks, data and weights.

The ZIP is built by tools/package.py, as the Makefile does, but from the working tree (``--worktree``:
a temporary index, so uncommitted files count and HEAD and the real index stay as they are).
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile

import pytest

from deeplandcover.tools import package
from deeplandcover.tools.qgis_run import REPO

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(),
    reason="needs git and a git checkout (make package uses git archive)",
)

MAX_BYTES = 2 * 1024 * 1024  # measured 2026-12-01: about 0.8 MiB
#: Files that hold data or weights: never in the ZIP, never tracked (tests make their fixtures in tmp).
DATA_SUFFIXES = (".tif", ".tiff", ".jp2", ".gpkg", ".geojson", ".shp", ".npy", ".onnx", ".pt", ".pth", ".ckpt", ".pb")
MAX_TRACKED_BYTES = 1024 * 1024


@pytest.fixture(scope="module")
def worktree(tmp_path_factory):
    """(tree id of the working tree, the ZIP built from it)."""
    tree = package.worktree_tree()
    return tree, package.build(tmp_path_factory.mktemp("package") / "deeplandcover.zip", tree)


def test_makefile_uses_tools_package():
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    dry = subprocess.run(["make", "-n", "package"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "tools/package.py dist/deeplandcover.zip" in dry and "git archive" not in dry


def test_zip_contents_and_size(worktree):
    tree, zpath = worktree
    names = zipfile.ZipFile(zpath).namelist()
    size = zpath.stat().st_size
    assert names and all(n.startswith("deeplandcover/") for n in names)
    rel = {n[len("deeplandcover/") :] for n in names}
    for f in (
        "metadata.txt",
        "__init__.py",
        "plugin.py",
        "LICENSE",
        "algorithms/",
        "core/",
        "models/",
        "provider/",
        "resources/",
        "tools/demo.py",
        "tools/machine.py",
    ):
        assert f in rel, f
    assert any(n.startswith("core/") and n.endswith(".py") for n in rel)
    for n in rel:
        assert not n.startswith(("data/", "tests/", ".ci/", "tools/bench")), n
        assert n != "BENCHMARKS.md" and n not in ("data", "tests", ".ci")
    # no sample data or weights in the plugin: no raster, vector, model or weight file at all
    assert not [n for n in rel if n.lower().endswith(DATA_SUFFIXES)], "data or weight files in the ZIP"
    # the exclusion is real: the archived tree has the tests, the ZIP has not
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-tree", "-r", "--name-only", tree], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "tests/test_package.py" in listed and "BENCHMARKS.md" in listed
    assert size < MAX_BYTES, f"plugin ZIP is {size / 1024:.0f} KiB"


def test_zip_of_head_has_the_same_exclusions(tmp_path):
    zpath = package.build(tmp_path / "head.zip")  # exactly what `make package` writes to dist/
    rel = [n[len("deeplandcover/") :] for n in zipfile.ZipFile(zpath).namelist()]
    assert "metadata.txt" in rel and "core/" in rel
    assert not [n for n in rel if n.startswith(("data/", "tests/", ".ci/", "tools/bench")) or n == "BENCHMARKS.md"]


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
