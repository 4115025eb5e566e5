"""Shared base of the Deep Land Cover Processing algorithms.

Subclasses set ``ALG_NAME``, ``ALG_DISPLAY``, ``ALG_GROUP``/``ALG_GROUP_ID``, ``REQUIREMENTS`` (from
:mod:`core.deps`), ``HELP`` (HTML/plain help) and implement ``initAlgorithm`` and :meth:`run_core` (not ``run``: that is
``QgsProcessingAlgorithm.run``, which ``processing.run`` calls).
:meth:`processAlgorithm` checks dependencies, adapts the feedback for core and turns core errors into
``QgsProcessingException`` with the same message, so users never see a traceback from torch or GDAL.
Nothing heavy is imported at module level: qgis_process loads the provider on every call.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..core import deps
from ..core.errors import CanceledError, DeepLandCoverError
from .geolibs import isolate_geolibs

HELP_URL = "https://github.com/deeplandcover/deeplandcover#readme"
#: The plugin icon (also the provider's).
ICON_PATH = str(Path(__file__).parent.parent / "resources" / "icon.svg")


def plugin_icon() -> QIcon:
    """The plugin icon (resources/icon.svg)."""
    return QIcon(ICON_PATH)


class QgsFeedbackAdapter:
    """Implements :class:`core.feedback.Feedback` over a ``QgsProcessingFeedback``."""

    def __init__(self, feedback: QgsProcessingFeedback | None) -> None:
        self.qfb = feedback if feedback is not None else QgsProcessingFeedback()

    def set_progress(self, percent: float) -> None:
        self.qfb.setProgress(float(max(0.0, min(100.0, percent))))

    def is_canceled(self) -> bool:
        return self.qfb.isCanceled()

    def info(self, message: str) -> None:
        self.qfb.pushInfo(message)

    def warning(self, message: str) -> None:
        self.qfb.pushWarning(message) if hasattr(self.qfb, "pushWarning") else self.qfb.reportError(message)


class DlcAlgorithm(QgsProcessingAlgorithm):
    """Boilerplate shared by every Deep Land Cover algorithm (see module docstring)."""

    ALG_NAME = ""
    ALG_DISPLAY = ""
    ALG_GROUP = "Deep learning"
    ALG_GROUP_ID = "deeplearning"
    REQUIREMENTS: tuple[deps.Requirement, ...] = deps.INFERENCE
    HELP = ""

    # -- identity ------------------------------------------------------------------------------
    def tr(self, text: str) -> str:
        """Translate ``text`` in the plugin's context."""
        return QCoreApplication.translate("DeepLandCover", text)

    def name(self) -> str:
        return self.ALG_NAME

    def displayName(self) -> str:
        return self.tr(self.ALG_DISPLAY)

    def group(self) -> str:
        return self.tr(self.ALG_GROUP)

    def groupId(self) -> str:
        return self.ALG_GROUP_ID

    def shortHelpString(self) -> str:
        """HELP with source line wraps removed (QGIS shows every newline as a line break)."""
        return self.tr(re.sub(r"(?<!\n)\n(?!\n)", " ", self.HELP.strip()))

    def helpUrl(self) -> str:
        return HELP_URL

    def createInstance(self) -> DlcAlgorithm:
        return type(self)()

    def icon(self) -> QIcon:
        return plugin_icon()

    # -- runtime -------------------------------------------------------------------------------
    def canExecute(self) -> tuple[bool, str]:
        """False with the pip command when a required package is missing or too old."""
        try:
            deps.check(self.REQUIREMENTS, self.displayName())
        except deps.DependencyError as e:
            return False, str(e)
        return True, ""

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        """Check dependencies, run :meth:`run_core`, map core errors to ``QgsProcessingException``."""
        try:
            unverified = deps.check(self.REQUIREMENTS, self.displayName())
        except deps.DependencyError as e:
            raise QgsProcessingException(str(e)) from e
        isolate_geolibs()  # before rasterio/shapely/pyproj are first imported in this QGIS process
        fb = QgsFeedbackAdapter(feedback)
        for message in unverified:
            fb.warning(message)
        try:
            return self.run_core(parameters, context, fb)
        except CanceledError as e:
            raise QgsProcessingException(f"{self.displayName()} was canceled; no output was written.") from e
        except DeepLandCoverError as e:
            raise QgsProcessingException(str(e)) from e
        except QgsProcessingException:
            raise
        except MemoryError as e:
            raise QgsProcessingException(
                f"{self.displayName()} ran out of memory; use a smaller tile size or batch size."
            ) from e
        except Exception as e:  # an unexpected bug: keep the trace in the log, give a readable message
            feedback.reportError(traceback.format_exc(), fatalError=False)
            raise QgsProcessingException(f"{self.displayName()} failed unexpectedly: {type(e).__name__}: {e}") from e

    def run_core(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsFeedbackAdapter
    ) -> dict[str, Any]:
        """The algorithm body: parameters -> core call -> outputs dict. Subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement run_core.")
