"""The per-user cache folders of the plugin (downloaded weights, ready-made models).

Standard library only: every stage may use it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def user_cache_dir(name: str, env: str) -> Path:
    """``$<env>`` when set, else the platform's user cache + ``deeplandcover/<name>``.

    The user cache is ``%LOCALAPPDATA%`` on Windows, ``~/Library/Caches`` on macOS and ``$XDG_CACHE_HOME``
    (default ``~/.cache``) elsewhere. The folder is neither checked nor created here.
    """
    if os.environ.get(env):
        return Path(os.environ[env])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "deeplandcover" / name
