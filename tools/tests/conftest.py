"""The fixtures of the tools' tests: those of the plugin suite (:mod:`deeplandcover.tests.helpers.fixtures`)."""

from __future__ import annotations

import os

from deeplandcover.tests.helpers.fixtures import data_dir, dlc_provider  # noqa: F401 (fixtures)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
