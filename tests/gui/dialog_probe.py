"""Child process of the GUI tests: opens Deep Land Cover dialogs in a real QGIS GUI application (offscreen).

Run by ``tests/gui/test_gui_dialogs.py`` (one child per algorithm, so that a QGIS crash, signal 11, fails
one test and names its algorithm instead of killing the test run), with one argument: a JSON file holding
the job. The child writes its findings to ``job["report"]`` (JSON) and PNGs of the dialogs into
``job["artefacts"]``; before each step it prints the step to stderr, so the last line before a crash
says what was clicked.

Modes:

* ``dialog``: for ``job["alg"]``, with each of the project's layers (a raster, a polygon layer) as the
  current layer, open the dialog the way the toolbox does (``processing.createAlgorithmDialog``), set
  every layer parameter to every layer its widget offers (the click that crashed QGIS in
  ``QgsProcessingFieldWidgetWrapper::setParentLayerWrapperValue``), then render it at QGIS's default
  dialog size (688 x 523) and measure the parameters panel: horizontal scroll bar, labels wider than the
  panel, the Advanced group (present, folded).
* ``selftest``: a throw-away algorithm with a field under a map-layer input that accepts rasters and a
  very long label, to show that this harness sees the overflow and the crash.
* ``run`` and ``model`` (in ``run_probe.py``): Classify Pixels through the dialog's own run path, and a
  ``.model3`` file in the graphical modeler and in the run dialog the toolbox opens for it.

``iface`` is absent offscreen: a small stand-in (``probe_common.IfaceStub``) is installed as ``qgis.utils.iface``
before Processing's GUI modules are imported (they bind ``iface`` at import time); it answers
``activeLayer()`` with the layer the job makes current and ``mapCanvas()`` with a real map canvas.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
from pathlib import Path

from probe_common import (
    click_every_layer,
    close_dialog,
    load_layers,
    open_dialog,
    pump,
    save_png,
    start_qgis,
    step,
)


def advanced_group(panel):
    """The parameters panel's "Advanced Parameters" group box (a QgsCollapsibleGroupBox), or None."""
    from qgis.PyQt.QtWidgets import QGroupBox

    return panel.findChild(QGroupBox, "grpAdvanced")


def measure_panel(dlg) -> dict:
    """Horizontal scroll bar, labels wider than the panel, and the Advanced group of the parameters panel."""
    from qgis.PyQt.QtWidgets import QLabel, QScrollArea

    panel = dlg.mainWidget()
    area = panel.findChild(QScrollArea, "scrollArea") or panel.findChild(QScrollArea)
    viewport = area.viewport().width()
    hbar = area.horizontalScrollBar()
    contents = area.widget()
    wide = []
    for label in contents.findChildren(QLabel):
        if not label.isVisibleTo(contents) or not label.text().strip():
            continue
        need = label.minimumSizeHint().width()
        if need > viewport:
            wide.append({"text": label.text(), "width": need})
    grp = advanced_group(panel)
    return {
        "viewport_width": viewport,
        "contents_min_width": contents.minimumSizeHint().width(),
        "hscroll": bool(hbar.isVisible() or hbar.maximum() > 0),
        "hscroll_max": hbar.maximum(),
        "wide_labels": wide,
        "advanced_shown": bool(grp is not None and grp.isVisibleTo(panel)),
        "advanced_collapsed": bool(grp is not None and grp.property("collapsed")),
        "dialog_size": [dlg.width(), dlg.height()],
    }


def expand_advanced(dlg, app) -> bool:
    """Unfold the Advanced group as a click on its title does; False when the dialog has none."""
    grp = advanced_group(dlg.mainWidget())
    if grp is None or not grp.isVisibleTo(dlg.mainWidget()):
        return False
    grp.setProperty("collapsed", False)
    pump(app, 0.2)
    return True


def probe_dialog(job: dict) -> dict:
    """The ``dialog`` mode (see the module docstring)."""
    from qgis.core import QgsProject

    alg_id, out = job["alg"], Path(job["artefacts"])
    app, iface, _provider = start_qgis()
    layers = load_layers(job["layers"], iface.canvas)
    stem = alg_id.split(":")[-1]
    report: dict = {"alg": alg_id, "passes": {}}
    for current in job["current"]:
        iface.active = layers[current]
        label = f"{alg_id} (current layer: {current})"
        step(f"{label}: opening the dialog")
        dlg = open_dialog(alg_id, app)
        first = not report["passes"]
        default = measure_panel(dlg)
        if first:
            report["png"] = save_png(dlg, out / f"{stem}_dialog.png")
        clicked = click_every_layer(dlg, app, list(layers.values()), label)
        after = measure_panel(dlg)
        step(f"{label}: opening Advanced")
        if expand_advanced(dlg, app):
            advanced = measure_panel(dlg)
            if first:
                report["png_advanced"] = save_png(dlg, out / f"{stem}_dialog_advanced.png")
        else:
            advanced = None
            advanced_group(dlg.mainWidget()).setProperty("collapsed", True)  # the next pass starts folded too
        report["passes"][current] = {"default": default, "after_clicks": after, "advanced": advanced, "set": clicked}
        step(f"{label}: closing")
        close_dialog(dlg, app)
    QgsProject.instance().clear()
    return report


def _selftest_provider():
    """A provider ``selftest`` with one algorithm ``broken`` built with both faults the GUI tests look for: a
    field under a map-layer input that accepts rasters (Compute Accuracy's REFERENCE before issue #26: QGIS
    3.22 crashes opening it while a raster is the current layer) and a label far wider than the panel. (QGIS 3.22 crashes on a dialog of an algorithm without provider.)"""
    from qgis.core import (
        QgsProcessingAlgorithm,
        QgsProcessingParameterField,
        QgsProcessingParameterMapLayer,
        QgsProcessingParameterNumber,
        QgsProcessingProvider,
    )

    class Broken(QgsProcessingAlgorithm):
        def name(self):
            return "broken"

        def displayName(self):  # noqa: N802
            return "Broken"

        def createInstance(self):  # noqa: N802
            return Broken()

        def initAlgorithm(self, config=None):  # noqa: N802
            self.addParameter(QgsProcessingParameterMapLayer("LAYER", "Layer (vector or raster)"))
            self.addParameter(
                QgsProcessingParameterField("FIELD", "Field", parentLayerParameterName="LAYER", optional=True)
            )
            self.addParameter(QgsProcessingParameterNumber("N", "A label far too long to fit " + "x" * 160))

        def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
            return {}

    class SelfTest(QgsProcessingProvider):
        def id(self):
            return "selftest"

        def name(self):
            return "Self-test"

        def loadAlgorithms(self):  # noqa: N802
            self.addAlgorithm(Broken())

    return SelfTest()


def probe_selftest(job: dict) -> dict:
    """The ``selftest`` mode: measure, then click, a dialog that is known to be wrong (see the docstring)."""
    from qgis.core import QgsApplication

    app, iface, _provider = start_qgis()
    provider = _selftest_provider()
    QgsApplication.processingRegistry().addProvider(provider)
    layers = load_layers(job["layers"], iface.canvas)
    iface.active = layers["polygons"]
    dlg = open_dialog("selftest:broken", app)
    report = {"default": measure_panel(dlg)}
    report["set"] = click_every_layer(dlg, app, list(layers.values()), "selftest")
    close_dialog(dlg, app)
    Path(job["report"]).write_text(json.dumps(report, indent=1), encoding="utf-8")  # before the crash
    iface.active = layers["image"]
    step("selftest: opening the dialog with a raster as the current layer")
    close_dialog(open_dialog("selftest:broken", app), app)
    return report


def main(argv: list[str]) -> int:
    faulthandler.enable()  # a segfault prints the Python stack to stderr before the child dies
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    modes = {"dialog": probe_dialog, "selftest": probe_selftest}
    if job["mode"] in ("run", "model"):
        import run_probe

        modes.update(run=run_probe.probe_run, model=run_probe.probe_model)
    report = modes[job["mode"]](job)
    Path(job["report"]).write_text(json.dumps(report, indent=1), encoding="utf-8")
    step("done")
    # exitQgis() after dialogs with Python wrappers can crash on teardown in some QGIS builds; the report
    # is written, and the test judges what the child did, not how the interpreter unwound.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
