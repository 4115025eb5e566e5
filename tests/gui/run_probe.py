"""The GUI probes that run something: Classify Pixels from its dialog (issue #26) and the shipped modeler
model in the modeler and its run dialog (issue #31). Child-process code, see ``dialog_probe.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

from probe_common import click_every_layer, close_dialog, load_layers, open_dialog, pump, save_png, start_qgis, step


def probe_run(job: dict) -> dict:
    """The ``run`` mode: Classify Pixels through the dialog's Run button path; reports the project's layers."""
    from qgis.core import QgsProject

    app, iface, _provider = start_qgis()
    import processing.gui.AlgorithmDialog as algorithm_dialog_module
    from processing.core.ProcessingConfig import ProcessingConfig

    algorithm_dialog_module.QMessageBox = _FailingMessageBox  # a modal box would hang offscreen
    ProcessingConfig.setSettingValue(ProcessingConfig.KEEP_DIALOG_OPEN, True)  # to show its log in the PNG
    layers = load_layers(job["layers"], iface.canvas)
    image = layers[job["input"]]
    iface.active = image
    step("classifypixels: opening the dialog")
    dlg = open_dialog("deeplandcover:classifypixels", app)
    dlg.setParameters({"INPUT": image.id(), "MODEL": job["model"], "OUTPUT": job["output"]})
    finished: list = []
    dlg.algorithmFinished.connect(lambda ok, results: finished.append((ok, dict(results))))
    step("classifypixels: runAlgorithm (the Run button)")
    dlg.runAlgorithm()
    deadline = time.monotonic() + float(job.get("timeout", 240))
    while not finished and time.monotonic() < deadline:
        pump(app, 0.1)
    pump(app, 0.5)
    report = {"finished": bool(finished), "ok": bool(finished and finished[0][0]), "log": dlg_log(dlg)}
    report["layers"] = [describe_layer(lyr) for lyr in QgsProject.instance().mapLayers().values()]
    report["png"] = save_png(dlg, Path(job["artefacts"]) / "classifypixels_run.png")
    close_dialog(dlg, app)
    return report


def dlg_log(dlg) -> str:
    try:
        from qgis.PyQt.QtWidgets import QTextEdit

        edits = dlg.findChildren(QTextEdit)
        return "\n".join(e.toPlainText() for e in edits)[-6000:]
    except Exception as e:  # the log is a diagnostic only
        return f"(no log: {e})"


def describe_layer(layer) -> dict:
    """Name, source, renderer type, palette classes, colour table size and legend of a project layer."""
    from qgis.core import QgsProject, QgsRasterLayer

    d = {"name": layer.name(), "source": layer.source(), "raster": isinstance(layer, QgsRasterLayer)}
    if not isinstance(layer, QgsRasterLayer):
        return d
    renderer = layer.renderer()
    d["renderer"] = renderer.type() if renderer else None
    if renderer is not None and renderer.type() == "paletted":
        d["classes"] = [[int(c.value), c.label, c.color.name()] for c in renderer.classes()]
    d["color_table"] = len(layer.dataProvider().colorTable(1) or [])
    node = QgsProject.instance().layerTreeRoot().findLayer(layer.id())
    legend = layer.legend()
    if node is not None and legend is not None:
        nodes = legend.createLayerTreeModelLegendNodes(node)
        d["legend"] = [str(n.data(0)) for n in nodes]
    return d


class _FailingMessageBox:
    """Stands in for QMessageBox in AlgorithmDialog: a question or warning there ends the run, unanswered."""

    Yes, No = 1, 0

    @staticmethod
    def question(*args, **_kw):
        step(f"unexpected question box: {args[1:3]}")
        return 0

    @staticmethod
    def warning(*args, **_kw):
        step(f"unexpected warning box: {args[1:3]}")
        return 0


def probe_model(job: dict) -> dict:
    """The ``model`` mode: a ``.model3`` file in the modeler and in its run dialog.

    Reports the model's ``validate()`` problems, each child's ``validateChildAlgorithm()`` problems (the
    test QGIS's modeler uses to draw a child red), PNGs of the modeler window and of the model drawn
    alone (``job["scene_png"]``), and the layers clicked in the run dialog with each layer current.
    """
    from qgis.core import QgsProcessingModelAlgorithm, QgsProject

    app, iface, _provider = start_qgis()
    layers = load_layers(job["layers"], iface.canvas)
    model = QgsProcessingModelAlgorithm()
    if not model.fromFile(job["model"]):
        raise RuntimeError(f"QGIS cannot read the model {job['model']}")
    ok, problems = model.validate()
    report: dict = {"valid": bool(ok), "problems": list(problems), "children": {}}
    for cid, child in model.childAlgorithms().items():
        child_ok, issues = model.validateChildAlgorithm(cid)
        report["children"][cid] = {"alg": child.algorithmId(), "found": child.algorithm() is not None}
        report["children"][cid].update(valid=bool(child_ok), issues=list(issues))
    stem = Path(job["model"]).stem
    step(f"{stem}: opening the modeler")
    report.update(modeler_window(model, app, Path(job["artefacts"]) / f"{stem}_modeler.png", job.get("scene_png")))
    report["run_dialog"] = {}
    toolbox_model = model_in_toolbox(job["model"])
    for current, layer in layers.items():
        iface.active = layer
        step(f"{stem}: opening the model's run dialog (current layer: {current})")
        dlg = open_dialog(toolbox_model, app)
        report["run_dialog"][current] = click_every_layer(dlg, app, list(layers.values()), f"{stem} run dialog")
        if current == next(iter(layers)):
            report["run_png"] = save_png(dlg, Path(job["artefacts"]) / f"{stem}_run_dialog.png")
        close_dialog(dlg, app)
    QgsProject.instance().clear()
    return report


def model_in_toolbox(path: str):
    """The model as the toolbox lists it under Models: loaded by QGIS's model provider from its folder."""
    from processing.core.ProcessingConfig import ProcessingConfig
    from processing.modeler.ModelerUtils import ModelerUtils
    from qgis.core import QgsApplication

    ProcessingConfig.setSettingValue(ModelerUtils.MODELS_FOLDER, str(Path(path).parent))
    provider = QgsApplication.processingRegistry().providerById("model")
    provider.refreshAlgorithms()
    for alg in provider.algorithms():
        if Path(alg.sourceFilePath()) == Path(path):
            return alg
    raise RuntimeError(f"QGIS's model provider did not load {path}")


def modeler_window(model, app, png: Path, scene_png: str | None) -> dict:
    """Open ``model`` in the graphical modeler, save a PNG of the window and (optionally) of the model alone."""
    from processing.modeler.ModelerDialog import ModelerDialog
    from qgis.PyQt.QtCore import QRectF, Qt
    from qgis.PyQt.QtGui import QColor, QImage, QPainter

    dlg = ModelerDialog.create(model)
    dlg.resize(1280, 900)
    dlg.show()
    pump(app, 0.5)
    out = {"modeler_png": save_png(dlg, png)}
    if scene_png:
        scene = dlg.view().scene()
        rect = scene.itemsBoundingRect().adjusted(-20, -20, 20, 20)
        image = QImage(int(rect.width()), int(rect.height()), QImage.Format.Format_ARGB32)
        image.fill(QColor(Qt.GlobalColor.white))
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
        painter.end()
        Path(scene_png).parent.mkdir(parents=True, exist_ok=True)
        out["scene_png"] = scene_png if image.save(scene_png) else None
    dlg.hide()  # not close(): closing may ask about unsaved changes in a modal box
    pump(app, 0.1)
    return out
