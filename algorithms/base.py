"""Shared base of the Deep Land Cover Processing algorithms.

Subclasses set ``ALG_NAME``, ``ALG_DISPLAY``, ``ALG_GROUP``/``ALG_GROUP_ID`` (group names start with their
place in the workflow: QGIS sorts groups by name), ``REQUIREMENTS`` (from :mod:`core.deps`), ``HELP`` (HTML/plain
help), ``SHORT`` (the toolbox tooltip), ``HELP_PAGE`` (the algorithm's page under ``docs/``) and implement
``initAlgorithm`` and :meth:`run_core` (not ``run``: that is ``QgsProcessingAlgorithm.run``, which ``processing.run``
calls); :meth:`normalized_parameters` turns values given in a retired shape into today's.
:meth:`processAlgorithm` checks dependencies, adapts the feedback for core and turns core errors into
``QgsProcessingException`` with the same message, so users never see a traceback from torch or GDAL. Parameter ids
in core's messages are replaced by the labels the dialog shows (:func:`algorithms.wording.speak_labels`).
Nothing heavy is imported at module level: qgis_process loads the provider on every call.
"""

from __future__ import annotations

import configparser
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
from .parameters import DEVICE, GPU_INDEX, legacy_device
from .wording import speak_labels


def _repository() -> str:
    """The ``repository`` URL of metadata.txt (one source for every help link)."""
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(Path(__file__).parent.parent / "metadata.txt", encoding="utf-8")
    return meta.get("general", "repository", fallback="https://github.com/deeplandcover/deeplandcover").rstrip("/")


REPOSITORY = _repository()
HELP_URL = f"{REPOSITORY}#readme"
#: The plugin icon (also the provider's).
ICON_PATH = str(Path(__file__).parent.parent / "resources" / "icon.svg")


def plugin_icon() -> QIcon:
    """The plugin icon (resources/icon.svg)."""
    return QIcon(ICON_PATH)


class QgsFeedbackAdapter:
    """Implements :class:`core.feedback.Feedback` over a ``QgsProcessingFeedback``."""

    def __init__(self, feedback: QgsProcessingFeedback | None, definitions=()) -> None:
        self.qfb = feedback if feedback is not None else QgsProcessingFeedback()
        self.definitions = list(definitions)

    def speak(self, message: str) -> str:
        """``message`` with parameter ids replaced by the dialog's labels."""
        return speak_labels(message, self.definitions)

    def set_progress(self, percent: float) -> None:
        self.qfb.setProgress(float(max(0.0, min(100.0, percent))))

    def is_canceled(self) -> bool:
        return self.qfb.isCanceled()

    def info(self, message: str) -> None:
        self.qfb.pushInfo(self.speak(message))

    def warning(self, message: str) -> None:
        message = self.speak(message)
        self.qfb.pushWarning(message) if hasattr(self.qfb, "pushWarning") else self.qfb.reportError(message)


class DlcAlgorithm(QgsProcessingAlgorithm):
    """Boilerplate shared by every Deep Land Cover algorithm (see module docstring)."""

    ALG_NAME = ""
    ALG_DISPLAY = ""
    ALG_GROUP = "Deep learning"
    ALG_GROUP_ID = "deeplearning"
    REQUIREMENTS: tuple[deps.Requirement, ...] = deps.INFERENCE
    HELP = ""
    #: One sentence for the toolbox tooltip (shortDescription).
    SHORT = ""
    #: The algorithm's page, relative to the repository root; "" = the README.
    HELP_PAGE = ""

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

    def shortDescription(self) -> str:
        """SHORT: the toolbox tooltip."""
        return self.tr(self.SHORT)

    def helpUrl(self) -> str:
        """The algorithm's own page (HELP_PAGE on the repository), else the README."""
        return f"{REPOSITORY}/blob/main/{self.HELP_PAGE}" if self.HELP_PAGE else HELP_URL

    def createInstance(self) -> DlcAlgorithm:
        return type(self)()

    def icon(self) -> QIcon:
        return plugin_icon()

    # -- parameters ----------------------------------------------------------------------------
    def normalized_parameters(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """A copy of ``parameters`` with values given in a retired shape turned into today's (a DEVICE given as
        text: "cuda:1"); subclasses add theirs. Idempotent.

        Raises:
            DeepLandCoverError: a value that cannot be converted (the message says the choices).
        """
        params = dict(parameters)
        device = self.parameterDefinition(DEVICE)
        if device is not None and hasattr(device, "options"):
            legacy_device(params, self.parameterDefinition(GPU_INDEX) is not None)
        return params

    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        """QGIS's checks on :meth:`normalized_parameters` (so old scripts pass), messages in the dialog's words."""
        try:
            params = self.normalized_parameters(parameters, context)
        except DeepLandCoverError as e:
            return False, speak_labels(str(e), self.parameterDefinitions())
        return super().checkParameterValues(params, context)

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
        fb = QgsFeedbackAdapter(feedback, self.parameterDefinitions())
        for message in unverified:
            fb.warning(message)
        try:
            return self.run_core(self.normalized_parameters(parameters, context), context, fb)
        except CanceledError as e:
            raise QgsProcessingException(f"{self.displayName()} was canceled; no output was written.") from e
        except DeepLandCoverError as e:
            raise QgsProcessingException(fb.speak(str(e))) from e
        except QgsProcessingException as e:
            raise QgsProcessingException(fb.speak(str(e))) from e
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
