"""qgis_process helpers for tests (the implementation lives in tools/qgis_run.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from deeplandcover.tools.qgis_run import QGIS_PROCESS, REPO, qgis_env

__all__ = ["QGIS_PROCESS", "REPO", "run_qgis_process"]


def run_qgis_process(args: list[str], config_dir: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``qgis_process.bin ARGS`` in the private profile ``config_dir``; returns the completed process."""
    return subprocess.run(
        [QGIS_PROCESS, *args], env=qgis_env(config_dir), capture_output=True, text=True, timeout=timeout
    )
