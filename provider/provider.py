"""QgsProcessingProvider ``deeplandcover``.

Algorithm modules are imported one by one: a module that fails to import (a bug) is logged and
skipped instead of taking the whole provider down. Algorithm modules import only qgis and the light
parts of core: never rasterio, torch, onnxruntime, geopandas and the like, which are imported when an
algorithm runs, so that every algorithm is listed on a QGIS without them and a missing package is
reported when one runs, with the installer's name (``tests/test_imports.py`` and
``tests/installer/test_bare_qgis.py`` check it). After *Install Python dependencies* has installed
packages, :func:`reload_provider` reloads the algorithms in the same session.
"""

from __future__ import annotations

import importlib

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsProcessingProvider
from qgis.PyQt.QtCore import QTimer
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


#: The provider id (``deeplandcover:<algorithm>``).
PROVIDER_ID = "deeplandcover"


def _refresh(provider_id: str) -> None:
    provider = QgsApplication.processingRegistry().providerById(provider_id)
    if provider is not None:
        provider.refreshAlgorithms()


def reload_provider(provider_id: str = PROVIDER_ID) -> bool:
    """Reload the provider's algorithms once the main thread's event loop is back (a zero timer).

    Called after packages were installed: the algorithms are created again, so that their dialogs
    (choices that depend on an installed package) and an algorithm whose module failed to load see
    the new packages. Deferred, so that the algorithm that asks (the installer, whose dialog or
    qgis_process still uses it) is finished first; under qgis_process, which exits after the run, it
    does nothing. Call it from the main thread (``postProcessAlgorithm``).

    Returns:
        True when the provider is registered and its reload is scheduled.
    """
    if QgsApplication.processingRegistry().providerById(provider_id) is None:
        return False
    QTimer.singleShot(0, lambda: _refresh(provider_id))
    return True


class DeepLandCoverProvider(QgsProcessingProvider):
    """Provider id ``deeplandcover``, name "Deep Land Cover"."""

    def id(self) -> str:  # noqa: D102
        return PROVIDER_ID

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
