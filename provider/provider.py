"""QgsProcessingProvider ``deeplandcover``.

Algorithm modules are imported one by one: a module that fails to import (a bug, or a missing
package at import time) is logged and skipped instead of taking the whole provider down. Algorithm
modules import only qgis and the light parts of core, never torch or onnxruntime.
"""

from __future__ import annotations

import importlib

from qgis.core import Qgis, QgsMessageLog, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..algorithms.base import ICON_PATH, plugin_icon

#: (module under deeplandcover.algorithms, class name), in Toolbox order.
ALGORITHMS: list[tuple[str, str]] = [
    ("export_training_tiles", "ExportTrainingTilesAlgorithm"),
    ("train_model", "TrainModelAlgorithm"),
    ("classify_pixels", "ClassifyPixelsAlgorithm"),
    ("classify_batch", "ClassifyBatchAlgorithm"),
    ("detect_change", "DetectChangeAlgorithm"),
    ("compute_accuracy", "ComputeAccuracyAlgorithm"),
    ("create_accuracy_points", "CreateAccuracyPointsAlgorithm"),
    ("install_dependencies", "InstallDependenciesAlgorithm"),
]


class DeepLandCoverProvider(QgsProcessingProvider):
    """Provider id ``deeplandcover``, name "Deep Land Cover"."""

    def id(self) -> str:  # noqa: D102
        return "deeplandcover"

    def name(self) -> str:  # noqa: D102
        return "Deep Land Cover"

    def longName(self) -> str:  # noqa: D102
        return "Deep Land Cover (deep-learning land-cover mapping)"

    def icon(self) -> QIcon:  # noqa: D102
        return plugin_icon()

    def svgIconPath(self) -> str:  # noqa: D102
        return ICON_PATH

    def loadAlgorithms(self) -> None:  # noqa: D102
        package = __name__.rsplit(".", 2)[0] + ".algorithms"
        for module_name, class_name in ALGORITHMS:
            try:
                module = importlib.import_module(f"{package}.{module_name}")
                self.addAlgorithm(getattr(module, class_name)())
            except Exception as e:  # keep the provider alive; say which algorithm is broken
                QgsMessageLog.logMessage(
                    f"Deep Land Cover: algorithm {class_name} could not be loaded: {type(e).__name__}: {e}",
                    "Processing",
                    Qgis.MessageLevel.Critical,
                )
