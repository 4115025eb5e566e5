"""Build ``resources/models/landcover_workflow.model3`` with the PyQGIS model API.

The graphical-modeler model chains Export Training Tiles -> Train Model -> Classify Pixels ->
Compute Accuracy. Run with a QGIS-enabled Python (the venv):
``QT_QPA_PLATFORM=offscreen .venv/bin/python -m deeplandcover.tools.make_workflow_model``.
The .model3 file is committed; this script is how it is regenerated after a parameter change.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "resources" / "models" / "landcover_workflow.model3"


def build():
    """Return the QgsProcessingModelAlgorithm (needs a running QgsApplication)."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelParameter,
        QgsProcessingParameterField,
        QgsProcessingParameterFile,
        QgsProcessingParameterNumber,
        QgsProcessingParameterRasterLayer,
        QgsProcessingParameterVectorLayer,
    )
    from qgis.core import (
        QgsProcessingModelChildParameterSource as Src,
    )
    from qgis.PyQt.QtCore import QPointF

    from ..algorithms.qtcompat import FILE_BEHAVIOR_FOLDER, NUMBER_INTEGER

    m = QgsProcessingModelAlgorithm("Land cover workflow", "Deep Land Cover", "deeplandcover")
    m.setHelpContent(
        {
            "ALG_DESC": "Export Training Tiles -> Train Model (U-Net) -> Classify Pixels -> "
            "Compute Accuracy on a separate reference layer. Every output goes to the work folder: chips/, "
            "model/model.onnx, classified.tif (styled), confusion_matrix.csv, accuracy_report.html."
        }
    )

    def add_input(param, x, y):
        m.addModelParameter(param, QgsProcessingModelParameter(param.name()))
        m.parameterComponent(param.name()).setPosition(QPointF(x, y))

    add_input(QgsProcessingParameterRasterLayer("image", "Image (multiband raster)"), 120, 60)
    add_input(QgsProcessingParameterVectorLayer("labels", "Training polygons"), 320, 60)
    add_input(
        QgsProcessingParameterField("class_field", "Class field (integer)", parentLayerParameterName="labels"), 520, 60
    )
    add_input(QgsProcessingParameterVectorLayer("reference", "Reference polygons for accuracy"), 720, 60)
    add_input(
        QgsProcessingParameterFile("work_folder", "Work folder (chips, model, outputs)", behavior=FILE_BEHAVIOR_FOLDER),
        920,
        60,
    )
    add_input(QgsProcessingParameterNumber("tile_size", "Tile size (px)", NUMBER_INTEGER, 64, minValue=16), 1120, 60)
    add_input(QgsProcessingParameterNumber("epochs", "Epochs", NUMBER_INTEGER, 10, minValue=1), 1320, 60)

    def child(cid, alg, desc, params, x, y):
        c = QgsProcessingModelChildAlgorithm(alg)
        c.setChildId(cid)
        c.setDescription(desc)
        c.setPosition(QPointF(x, y))
        for k, v in params.items():
            c.addParameterSources(k, [v])
        m.addChildAlgorithm(c)

    child(
        "export",
        "deeplandcover:exporttrainingtiles",
        "Export Training Tiles",
        {
            "INPUT": Src.fromModelParameter("image"),
            "LABELS": Src.fromModelParameter("labels"),
            "CLASS_FIELD": Src.fromModelParameter("class_field"),
            "TILE_SIZE": Src.fromModelParameter("tile_size"),
            "STRIDE": Src.fromModelParameter("tile_size"),  # no overlap: no leakage into validation blocks
            "OUTPUT_FOLDER": Src.fromExpression("@work_folder || '/chips'"),
        },
        300,
        220,
    )
    child(
        "train",
        "deeplandcover:trainmodel",
        "Train Model",
        {
            "INPUT": Src.fromChildOutput("export", "OUTPUT_FOLDER"),
            "EPOCHS": Src.fromModelParameter("epochs"),
            "OUTPUT_FOLDER": Src.fromExpression("@work_folder || '/model'"),
        },
        500,
        360,
    )
    child(
        "classify",
        "deeplandcover:classifypixels",
        "Classify Pixels",
        {
            "INPUT": Src.fromModelParameter("image"),
            "MODEL": Src.fromChildOutput("train", "OUTPUT_MODEL"),
            "OUTPUT": Src.fromExpression("@work_folder || '/classified.tif'"),
        },
        700,
        500,
    )
    child(
        "accuracy",
        "deeplandcover:computeaccuracy",
        "Compute Accuracy",
        {
            "INPUT": Src.fromChildOutput("classify", "OUTPUT"),
            "REFERENCE": Src.fromModelParameter("reference"),
            "REFERENCE_FIELD": Src.fromModelParameter("class_field"),
            "OUTPUT_MATRIX": Src.fromExpression("@work_folder || '/confusion_matrix.csv'"),
            "OUTPUT_REPORT": Src.fromExpression("@work_folder || '/accuracy_report.html'"),
        },
        900,
        640,
    )
    return m


def main() -> int:
    """Write the .model3 file."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    ok = build().toFile(str(TARGET))
    print(("wrote " if ok else "FAILED to write ") + str(TARGET))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
