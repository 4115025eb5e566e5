"""The machine a benchmark ran on, for the figures in BENCHMARKS.md, and where the real data are."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The real data read by the demo, the benchmarks and the tests: ``$DLC_DATA`` if set, else ``data/``.

    ``data/`` ships with the repository (it is left out of the plugin ZIP); the callers treat a missing
    folder as an error. The path is not checked here.
    """
    env = os.environ.get("DLC_DATA", "").strip()
    return Path(env).expanduser().resolve() if env else REPO / "data"


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform.processor())."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line: cores, CPU model, memory."""
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024**2:.0f} GiB RAM"
    return f"{os.cpu_count()} cores, {cpu_model()}{mem}"
