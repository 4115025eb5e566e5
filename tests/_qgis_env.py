"""Environment for running qgis_process.bin from tests and tools.

qgis_process embeds Debian's Python, which finds its stdlib through the first ``python3`` on PATH
(a pyenv interpreter first on PATH breaks it with "Couldn't load SIP module"), and it needs the
venv's site-packages for rasterio/onnxruntime/torch.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"


def qgis_process_env(config_dir: Path) -> dict[str, str]:
    """Environment with a private QGIS profile in ``config_dir`` holding a link to this plugin."""
    plugins = config_dir / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "deeplandcover"
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if "pyenv" not in p and "/.venv/" not in p
    ) or "/usr/bin:/bin"
    sitepk = [p for p in site.getsitepackages() if "site-packages" in p and sys.prefix in p]
    env["PYTHONPATH"] = os.pathsep.join(sitepk + [env.get("PYTHONPATH", "")]).strip(os.pathsep)
    env["QGIS_CUSTOM_CONFIG_PATH"] = str(config_dir)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.pop("PYTHONHOME", None)
    return env


def run_qgis_process(args: list[str], config_dir: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``qgis_process.bin ARGS`` with :func:`qgis_process_env`; returns the completed process."""
    return subprocess.run([QGIS_PROCESS, *args], env=qgis_process_env(config_dir), capture_output=True,
                          text=True, timeout=timeout)
