"""core.inference.batch.__main__: the command line (python -m deeplandcover.core.inference.batch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import deeplandcover

#: The folder holding this checkout as the ``deeplandcover`` package (unresolved: it may be a link).
PKG_ROOT = Path(deeplandcover.__file__).parent.parent


def test_cli_runs_on_its_own_local_cluster(mosaic, tmp_path):
    parts, _, model = mosaic
    env = {**os.environ, "PYTHONPATH": str(PKG_ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "deeplandcover.core.inference.batch",
        "--model",
        str(model),
        "--out",
        str(tmp_path / "o"),
        "--workers",
        "2",
        str(parts[0].parent),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert summary["computed"] == 4 and summary["failed"] == [] and Path(summary["vrt"]).is_file()
    bad = subprocess.run([*cmd[:-1], str(tmp_path / "missing")], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "neither a raster" in bad.stderr
