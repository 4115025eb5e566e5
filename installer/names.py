"""Distribution names and paths, compared the way pip and the operating system compare them."""

from __future__ import annotations

import os
import re


def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name: ``PyQt5_sip`` -> ``pyqt5-sip``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same absolute path (case-insensitive where the OS is)."""
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))
