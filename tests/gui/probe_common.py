"""What the GUI probes share: a QGIS GUI application with Processing and the plugin's provider, an ``iface``
stand-in, the test layers, dialogs opened as the toolbox opens them, event pumping and PNGs.

Imported by the child-process scripts of the GUI tests (``dialog_probe.py``), never by pytest itself: a
QGIS GUI application in the pytest process would clash with pytest-qgis's headless one.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

DIALOG_SIZE = (688, 523)  # QGIS's default size of a Processing algorithm dialog


def step(message: str) -> None:
    """Say what comes next on stderr (flushed: the last line before a crash names the step)."""
    print(f"[dialog_probe] {message}", file=sys.stderr, flush=True)


class IfaceStub:
    """The parts of ``QgisInterface`` that Processing's dialogs read."""

    def __init__(self, canvas) -> None:
        from qgis.PyQt.QtWidgets import QMainWindow

        self.canvas = canvas
        self.active = None
        self.window = QMainWindow()  # the parent QGIS gives dialogs; never shown

    def activeLayer(self):  # noqa: N802 - QgisInterface's name
        return self.active

    def setActiveLayer(self, layer) -> bool:  # noqa: N802 - Processing's post-processing (QGIS >= 3.28) calls it
        self.active = layer
        return True

    def mapCanvas(self):  # noqa: N802
        return self.canvas

    def mainWindow(self):  # noqa: N802
        return self.window

    def layerTreeView(self):  # noqa: N802 - Processing's post-processing (QGIS >= 3.28) reads and sets it
        from qgis.core import QgsLayerTreeModel, QgsProject
        from qgis.gui import QgsLayerTreeView

        if getattr(self, "_tree", None) is None:
            self._tree_model = QgsLayerTreeModel(QgsProject.instance().layerTreeRoot())
            self._tree = QgsLayerTreeView(self.window)
            self._tree.setModel(self._tree_model)
        return self._tree

    def iconSize(self, dockedToolbar: bool = False):  # noqa: N802
        from qgis.PyQt.QtCore import QSize

        return QSize(24, 24)

    def browserModel(self):  # noqa: N802
        return None

    def messageBar(self):  # noqa: N802
        return None

    def addProject(self, *_args) -> bool:  # noqa: N802
        return False


def start_qgis():
    """QgsApplication with GUI, Processing initialised, the plugin's provider registered; returns (app, iface, provider)."""
    from qgis.core import QgsApplication

    app = QgsApplication([], True)
    app.initQgis()
    import qgis.utils
    from qgis.gui import QgsMapCanvas

    stub = IfaceStub(QgsMapCanvas())
    qgis.utils.iface = stub  # before processing.gui.* binds it
    plugins = Path(QgsApplication.pkgDataPath()) / "python" / "plugins"
    if str(plugins) not in sys.path:
        sys.path.append(str(plugins))
    from processing.core.Processing import Processing

    Processing.initialize()
    from deeplandcover.provider.provider import DeepLandCoverProvider

    provider = DeepLandCoverProvider()  # keep a reference: the registry does not own Python providers
    if not QgsApplication.processingRegistry().addProvider(provider):
        raise RuntimeError("the deeplandcover provider could not be registered")
    return app, stub, provider


def load_layers(paths: dict[str, str], canvas) -> dict:
    """Add the job's layers (name -> file) to the project; ``.tif`` as rasters, others as vectors."""
    from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer

    layers = {}
    for name, path in paths.items():
        layer = QgsRasterLayer(path, name) if path.endswith(".tif") else QgsVectorLayer(path, name, "ogr")
        if not layer.isValid():
            raise RuntimeError(f"test layer {path} is not valid")
        QgsProject.instance().addMapLayer(layer)
        layers[name] = layer
    canvas.setLayers(list(layers.values()))
    canvas.setExtent(next(iter(layers.values())).extent())
    return layers


def pump(app, seconds: float = 0.05) -> None:
    """Process events for ``seconds`` (layouts, deferred signals, the field widgets' updates)."""
    end = time.monotonic() + seconds
    while True:
        app.processEvents()
        if time.monotonic() >= end:
            break
        time.sleep(0.005)


def open_dialog(alg, app):
    """The dialog of ``alg`` (an id or an algorithm, e.g. a model) as the toolbox builds it, at the default size."""
    import processing

    dlg = processing.createAlgorithmDialog(alg)
    if dlg is None:
        raise RuntimeError(f"no dialog for {alg}: is the algorithm registered?")
    dlg.resize(*DIALOG_SIZE)
    dlg.show()
    pump(app, 0.2)
    return dlg


def close_dialog(dlg, app) -> None:
    dlg.close()
    dlg.deleteLater()
    pump(app, 0.05)


def save_png(dlg, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not dlg.grab().save(str(path)):
        raise RuntimeError(f"could not save {path}")
    return str(path)


def _class_name(widget) -> str:
    """The C++ class of a widget (sip shows QGIS's private widget classes as their Qt base, e.g. QComboBox)."""
    return widget.metaObject().className()


def _layer_combos(widget) -> list:
    """The QgsMapLayerComboBox widgets inside ``widget`` (seen from Python as QComboBox)."""
    from qgis.PyQt.QtWidgets import QComboBox

    if widget is None:
        return []
    combos = [widget] if isinstance(widget, QComboBox) else widget.findChildren(QComboBox)
    return [c for c in combos if _class_name(c) == "QgsMapLayerComboBox"]


def _combo_layers(combo) -> list[tuple[int, object]]:
    """(item index, layer) of the layers a layer combo box offers (the layer id is in an item data role)."""
    from qgis.core import QgsProject
    from qgis.PyQt.QtCore import Qt

    project = QgsProject.instance()
    found = []
    user_role = Qt.ItemDataRole.UserRole
    user_role = int(getattr(user_role, "value", user_role))
    for i in range(combo.count()):
        for role in range(user_role, user_role + 8):
            data = combo.itemData(i, role)
            layer = project.mapLayer(data) if isinstance(data, str) and data else None
            if layer is not None:
                found.append((i, layer))
                break
    return found


def _wrapped_widget(wrapper):
    return wrapper.wrappedWidget() if hasattr(wrapper, "wrappedWidget") else getattr(wrapper, "widget", None)


def _multilayer_choices(param, layers: list) -> list:
    """The layers a multiple-layer input of ``param.layerType()`` takes (rasters, vectors or both)."""
    from qgis.core import QgsProcessing, QgsRasterLayer, QgsVectorLayer

    kind = param.layerType()  # compared, not int()-ed: a Python enum on QGIS >= 3.36
    if kind == QgsProcessing.SourceType.TypeRaster:
        return [lyr for lyr in layers if isinstance(lyr, QgsRasterLayer)]
    if kind == QgsProcessing.SourceType.TypeMapLayer:
        return [lyr for lyr in layers if isinstance(lyr, (QgsRasterLayer, QgsVectorLayer))]
    return [lyr for lyr in layers if isinstance(lyr, QgsVectorLayer)]


def click_every_layer(dlg, app, layers: list, label: str) -> list[str]:
    """Set every layer parameter of ``dlg`` to every layer its widget offers; returns what was set."""
    from qgis.core import QgsProcessingContext

    done = []
    panel = dlg.mainWidget()
    for param in dlg.algorithm().parameterDefinitions():
        wrapper = panel.wrappers.get(param.name())
        if wrapper is None:
            continue
        if param.type() == "multilayer":
            for layer in _multilayer_choices(param, layers):
                step(f"{label}: {param.name()} <- [{layer.name()}]")
                wrapper.setParameterValue([layer.id()], QgsProcessingContext())
                pump(app)
                done.append(f"{param.name()}=[{layer.name()}]")
            continue
        for combo in _layer_combos(_wrapped_widget(wrapper)):
            for index, layer in _combo_layers(combo):
                step(f"{label}: {param.name()} <- {layer.name()} ({type(layer).__name__})")
                combo.setCurrentIndex(index)  # what a click in the dropdown does
                pump(app)
                done.append(f"{param.name()}={layer.name()}")
    return done
