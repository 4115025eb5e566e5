"""The benchmarks' layout: ``make bench`` finds every benchmark it names, and a benchmark imports what it shares
with others from :mod:`tools.bench.common` only, never from another benchmark."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from deeplandcover.tools import bench
from deeplandcover.tools.bench.__main__ import BENCHES

BENCH = Path(bench.__file__).parent
SHARED = ("common", "__init__", "__main__")


def cross_imports(path: Path) -> list[str]:
    """The other benchmarks ``path`` imports (absolute ``deeplandcover.tools.bench.X`` or relative ``.X``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deeplandcover.tools.bench"):
            rest = node.module.split(".")[3:]
            names = rest[:1] or [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[3] for a in node.names if a.name.startswith("deeplandcover.tools.bench.")]
        else:
            continue
        found += [f"{path.stem} imports {n} (line {node.lineno})" for n in names if n and n.split(".")[0] not in SHARED]
    return found


def test_benchmarks_share_code_through_common_only():
    found = [hit for p in sorted(BENCH.glob("*.py")) if p.stem not in SHARED for hit in cross_imports(p)]
    assert not found, "move what benchmarks share into tools/bench/common.py: " + "; ".join(found)


@pytest.mark.parametrize(
    ("line", "hit"),
    [
        ("from deeplandcover.tools.bench.inference import make_model", True),
        ("from deeplandcover.tools.bench import recipe", True),
        ("from .rf_vs_unet import subset_folder", True),
        ("import deeplandcover.tools.bench.train", True),
        ("from deeplandcover.tools.bench.common import cpu_model", False),
        ("from .common import cpu_model", False),
        ("from deeplandcover.core.raster.grid import RasterGrid", False),
    ],
)
def test_cross_import_check_sees_every_form(tmp_path, line, hit):
    path = tmp_path / "x.py"
    path.write_text(line + "\n", encoding="utf-8")
    assert bool(cross_imports(path)) is hit


@pytest.mark.parametrize("name", BENCHES)
def test_make_bench_runs_modules_that_exist(name):
    """``make bench`` imports ``deeplandcover.tools.bench.<name>`` and calls its ``main``."""
    assert (BENCH / f"{name}.py").is_file(), f"make bench names {name}, but tools/bench/{name}.py is not there"
    assert callable(importlib.import_module(f"deeplandcover.tools.bench.{name}").main)
