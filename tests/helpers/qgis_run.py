"""Run Processing algorithms through the real ``qgis_process.bin`` (used by the tests and the demo).

qgis_process embeds Debian's Python, which finds its stdlib through the first ``python3`` on PATH,
so PATH is cleaned of pyenv/venv shims and the venv's site-packages go on PYTHONPATH. The plugin
is linked into a private QGIS profile (``QGIS_CUSTOM_CONFIG_PATH``) and enabled there.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

from .repository import REPO

QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"


class QgisProcessError(RuntimeError):
    """qgis_process returned non-zero; the message holds the end of its output."""


def qgis_env(config_dir: Path) -> dict[str, str]:
    """Environment for qgis_process with this plugin linked into a profile under ``config_dir``."""
    plugins = config_dir / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "deeplandcover"
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    env = dict(os.environ)
    env["PATH"] = (
        os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if "pyenv" not in p and "/.venv/" not in p)
        or "/usr/bin:/bin"
    )
    sitepk = [p for p in site.getsitepackages() if "site-packages" in p and sys.prefix in p]
    env["PYTHONPATH"] = os.pathsep.join(sitepk + [env.get("PYTHONPATH", "")]).strip(os.pathsep)
    env["QGIS_CUSTOM_CONFIG_PATH"] = str(config_dir)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.pop("PYTHONHOME", None)
    return env


def command_line(alg_id: str, params: dict[str, Any]) -> list[str]:
    """The qgis_process argument list for ``params`` (a list value repeats the key, as qgis_process wants)."""
    args = [QGIS_PROCESS, "--json", "run", alg_id, "--"]
    for k, v in params.items():
        for item in v if isinstance(v, (list, tuple)) else [v]:
            if isinstance(item, bool):
                item = "true" if item else "false"
            args.append(f"{k}={item}")
    return args


def enable_plugin(config_dir: Path) -> None:
    """``qgis_process plugins enable deeplandcover`` in the private profile."""
    res = subprocess.run(
        [QGIS_PROCESS, "plugins", "enable", "deeplandcover"],
        env=qgis_env(config_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if res.returncode != 0:
        raise QgisProcessError(f"could not enable the plugin: {res.stdout[-2000:]}{res.stderr[-2000:]}")


def run_algorithm(
    alg_id: str, params: dict[str, Any], config_dir: Path, log: Path | None = None, timeout: float = 3600
) -> dict[str, Any]:
    """Run one algorithm with qgis_process.bin and return its ``results`` dict.

    Raises:
        QgisProcessError: non-zero exit; the message ends with qgis_process's error output.
    """
    cmd = command_line(alg_id, params)
    res = subprocess.run(cmd, env=qgis_env(config_dir), capture_output=True, text=True, timeout=timeout)
    if log is not None:
        with open(log, "a", encoding="utf-8") as f:
            f.write("$ " + " ".join(cmd) + "\n" + res.stderr + "\n")
    if res.returncode != 0:
        tail = (res.stderr.strip() or res.stdout.strip())[-3000:]
        raise QgisProcessError(f"{alg_id} failed (exit {res.returncode}):\n{tail}")
    start = res.stdout.find("{")
    return json.loads(res.stdout[start:]).get("results", {}) if start >= 0 else {}
