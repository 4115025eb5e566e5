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
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..core import deps
from ..core.errors import CanceledError, DeepLandCoverError
from .geolibs import isolate_geolibs

HELP_URL = "https://github.com/deeplandcover/deeplandcover#readme"


class QgsFeedbackAdapter:
    """Implements :class:`core.feedback.Feedback` over a ``QgsProcessingFeedback``."""

    def __init__(self, feedback: QgsProcessingFeedback | None) -> None:
        self.qfb = feedback if feedback is not None else QgsProcessingFeedback()

    def set_progress(self, percent: float) -> None:  # noqa: D102
        self.qfb.setProgress(float(max(0.0, min(100.0, percent))))

    def is_canceled(self) -> bool:  # noqa: D102
        return self.qfb.isCanceled()

    def info(self, message: str) -> None:  # noqa: D102
        self.qfb.pushInfo(message)

    def warning(self, message: str) -> None:  # noqa: D102
        self.qfb.pushWarning(message) if hasattr(self.qfb, "pushWarning") else self.qfb.reportError(message)


class NotBuiltYetError(QgsProcessingException):
    """Raised by an algorithm whose body is not implemented in this version."""


class DlcAlgorithm(QgsProcessingAlgorithm):
    """Boilerplate shared by every Deep Land Cover algorithm (see module docstring)."""

    ALG_NAME = ""
    ALG_DISPLAY = ""
    ALG_GROUP = "Deep learning"
    ALG_GROUP_ID = "deeplearning"
    REQUIREMENTS: tuple[deps.Requirement, ...] = deps.INFERENCE
    HELP = ""
    IMPLEMENTED = True

    # -- identity ------------------------------------------------------------------------------
    def tr(self, text: str) -> str:
        """Translate ``text`` in the plugin's context."""
        return QCoreApplication.translate("DeepLandCover", text)

    def name(self) -> str:  # noqa: D102
        return self.ALG_NAME

    def displayName(self) -> str:  # noqa: D102
        return self.tr(self.ALG_DISPLAY)

    def group(self) -> str:  # noqa: D102
        return self.tr(self.ALG_GROUP)

    def groupId(self) -> str:  # noqa: D102
        return self.ALG_GROUP_ID

    def shortHelpString(self) -> str:
        """HELP with source line wraps removed (QGIS shows every newline as a line break)."""
        return self.tr(re.sub(r"(?<!\n)\n(?!\n)", " ", self.HELP.strip()))

    def helpUrl(self) -> str:  # noqa: D102
        return HELP_URL

    def createInstance(self) -> DlcAlgorithm:  # noqa: D102
        return type(self)()

    def icon(self):  # noqa: D102
        from ..provider.provider import plugin_icon

        return plugin_icon()

    def add_tiling_parameters(self) -> None:
        """TILE_SIZE (0 = the model's), OVERLAP (-1 = the model's) and BATCH_SIZE, shared by every
        algorithm that runs a model through the tiled inference engine."""
        from qgis.core import QgsProcessingParameterNumber as Num

        from .qtcompat import NUMBER_INTEGER

        self.addParameter(Num("TILE_SIZE", self.tr("Tile size (pixels, 0 = from the model)"), NUMBER_INTEGER, 0,
                              minValue=0))
        self.addParameter(Num("OVERLAP", self.tr("Tile overlap (pixels, -1 = from the model)"), NUMBER_INTEGER, -1,
                              minValue=-1))
        self.addParameter(Num("BATCH_SIZE", self.tr("Batch size (tiles per model call)"), NUMBER_INTEGER, 4, minValue=1))

    # -- runtime -------------------------------------------------------------------------------
    def canExecute(self) -> tuple[bool, str]:
        """False with the pip command when a required package is missing or too old."""
        try:
            deps.check(self.REQUIREMENTS, self.displayName())
        except deps.DependencyError as e:
            return False, str(e)
        return True, ""

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """Check dependencies, run :meth:`run_core`, map core errors to ``QgsProcessingException``."""
        if not self.IMPLEMENTED:
            raise NotBuiltYetError(
                f"{self.displayName()} ({self.ALG_NAME}) is not built yet in this version of Deep Land Cover; "
                "it is registered so that models and scripts can refer to its final id."
            )
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

    def run_core(self, parameters: dict[str, Any], context: QgsProcessingContext,
                 feedback: QgsFeedbackAdapter) -> dict[str, Any]:
        """The algorithm body: parameters -> core call -> outputs dict. Subclasses implement it."""
        raise NotBuiltYetError(f"{self.ALG_NAME} has no body.")


def layer_path(layer) -> str:
    """File path of a QGIS map layer (the part of its source before ``|``), for core functions."""
    return layer.source().split("|")[0] if layer is not None else ""
