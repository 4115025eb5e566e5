"""Generate ``resources/models/landcover_workflow.model3`` from the algorithms as they are (issue #31).

The graphical-modeler model chains Export Training Tiles -> Train Model -> Classify Pixels -> Compute
Accuracy. Only the wiring is written here (:data:`INPUTS`, :data:`CHILDREN`): which model input or
earlier output feeds which parameter. Every other parameter of every child is read from the
algorithm's ``parameterDefinitions()`` and written out with its default, so the model sets every
parameter (no "Parameter X is mandatory", no red box in the modeler) and follows every change of the
algorithms when it is regenerated. The generator refuses a model QGIS's dialogs would crash on (a field
input under a layer input that accepts rasters) and a mandatory parameter it has no value for.

Regenerate after a parameter change (``tests/integration/test_workflow_model.py`` fails until then)::

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m deeplandcover.tools.dev.make_workflow_model [--check]

(with PATH cleaned of pyenv shims, as for qgis_process). ``--check`` writes nothing and exits 1 when the
shipped file differs from what the algorithms give now.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[2]
TARGET = REPO / "resources" / "models" / "landcover_workflow.model3"
MODEL_NAME, MODEL_GROUP = "Land cover workflow", "Deep Land Cover"


class Input(NamedTuple):
    """A model input: its id (``qgis_process ... image=``; public, the README uses it), what the dialog
    says, its kind (raster, polygons, field, folder, int) and, for numbers, default and minimum."""

    name: str
    label: str
    kind: str
    default: int | None = None
    minimum: int | None = None
    parent: str = ""


#: The model's inputs, in the order of the workflow (and of the run dialog).
INPUTS = [
    Input("image", "Image (multiband raster to train on and classify)", "raster"),
    Input("labels", "Training polygons", "polygons"),
    Input("class_field", "Class field (integer, in training and reference polygons)", "field", parent="labels"),
    Input("tile_size", "Tile size (pixels)", "int", 64, 16),
    Input("epochs", "Training epochs", "int", 10, 1),
    Input("reference", "Reference polygons (for the accuracy)", "polygons"),
    Input("work_folder", "Work folder (chips, model and results)", "folder"),
]

#: Bindings: ``param: "@input"`` (a model input), ``"child.OUTPUT"`` (an earlier child's output) or
#: ``"=expression"``. Unbound parameters get their defaults.
CHILDREN = [
    (
        "export",
        "deeplandcover:exporttrainingtiles",
        {
            "INPUT": "@image",
            "LABELS": "@labels",
            "CLASS_FIELD": "@class_field",
            "TILE_SIZE": "@tile_size",
            "STRIDE": "@tile_size",  # no overlap: no leakage into the validation blocks
            "OUTPUT_FOLDER": "=@work_folder || '/chips'",
        },
    ),
    (
        "train",
        "deeplandcover:trainmodel",
        {"INPUT": "export.OUTPUT_FOLDER", "EPOCHS": "@epochs", "OUTPUT_FOLDER": "=@work_folder || '/model'"},
    ),
    (
        "classify",
        "deeplandcover:classifypixels",
        {"INPUT": "@image", "MODEL": "train.OUTPUT_MODEL", "OUTPUT": "=@work_folder || '/classified.tif'"},
    ),
    (
        "accuracy",
        "deeplandcover:computeaccuracy",
        {
            "INPUT": "classify.OUTPUT",
            "REFERENCE": "@reference",
            "REFERENCE_FIELD": "@class_field",
            "OUTPUT_MATRIX": "=@work_folder || '/confusion_matrix.csv'",
            "OUTPUT_REPORT": "=@work_folder || '/accuracy_report.html'",
        },
    ),
]
HELP = (
    "Export Training Tiles -> Train Model -> Classify Pixels -> Compute Accuracy against separate reference "
    "polygons. Every output goes to the work folder: chips/, model/model.onnx, classified.tif (styled), "
    "confusion_matrix.csv, accuracy_report.html. The other settings are each algorithm's defaults: edit a "
    "step in the modeler to change them."
)


class ModelError(ValueError):
    """The algorithms and the wiring above disagree (a renamed key, a new mandatory parameter)."""


def _input_definition(spec: Input):
    from qgis.core import (
        QgsProcessingParameterField,
        QgsProcessingParameterFile,
        QgsProcessingParameterNumber,
        QgsProcessingParameterRasterLayer,
        QgsProcessingParameterVectorLayer,
    )

    from ...algorithms.qtcompat import FILE_BEHAVIOR_FOLDER, NUMBER_INTEGER, SOURCE_VECTOR_POLYGON

    if spec.kind == "raster":
        return QgsProcessingParameterRasterLayer(spec.name, spec.label)
    if spec.kind == "polygons":
        return QgsProcessingParameterVectorLayer(spec.name, spec.label, [SOURCE_VECTOR_POLYGON])
    if spec.kind == "field":
        return QgsProcessingParameterField(spec.name, spec.label, parentLayerParameterName=spec.parent)
    if spec.kind == "folder":
        return QgsProcessingParameterFile(spec.name, spec.label, behavior=FILE_BEHAVIOR_FOLDER)
    if spec.kind == "int":
        return QgsProcessingParameterNumber(spec.name, spec.label, NUMBER_INTEGER, spec.default, minValue=spec.minimum)
    raise ModelError(f"unknown input kind {spec.kind!r}")


def _source(binding: str, inputs: set[str], children: set[str]):
    from qgis.core import QgsProcessingModelChildParameterSource as Src

    if binding.startswith("@") and binding[1:] in inputs:
        return Src.fromModelParameter(binding[1:])
    if binding.startswith("="):
        return Src.fromExpression(binding[1:])
    child, _, output = binding.partition(".")
    if child in children and output:
        return Src.fromChildOutput(child, output)
    raise ModelError(f"binding {binding!r} names no model input and no earlier step")


def _child(model, cid: str, alg_id: str, bindings: dict[str, str], index: int, done: set[str]):
    """Add one step: the bound parameters, every other input parameter at its default."""
    from qgis.core import QgsApplication, QgsProcessingModelChildAlgorithm
    from qgis.core import QgsProcessingModelChildParameterSource as Src
    from qgis.PyQt.QtCore import QPointF

    alg = QgsApplication.processingRegistry().algorithmById(alg_id)
    if alg is None:
        raise ModelError(f"{alg_id} is not registered: is the deeplandcover provider loaded?")
    keys = {p.name() for p in alg.parameterDefinitions()}
    unknown = sorted(set(bindings) - keys)
    if unknown:
        raise ModelError(f"{alg_id} has no parameter {unknown}: update CHILDREN in {__name__}")
    child = QgsProcessingModelChildAlgorithm(alg_id)
    child.setChildId(cid)
    child.setDescription(alg.displayName())
    child.setPosition(QPointF(300 + 200 * index, 260 + 140 * index))
    names = {i.name for i in INPUTS}
    for p in alg.parameterDefinitions():
        if p.name() in bindings:
            child.addParameterSources(p.name(), [_source(bindings[p.name()], names, done)])
        elif p.isDestination():
            continue  # optional outputs stay off; a mandatory one would go to a temporary file
        elif p.defaultValue() is None and not p.flags() & _optional_flag():
            raise ModelError(f"{alg_id} {p.name()} is mandatory and has no default: bind it in CHILDREN")
        else:
            child.addParameterSources(p.name(), [Src.fromStaticValue(p.defaultValue())])
    model.addChildAlgorithm(child)


def _optional_flag():
    from qgis.core import Qgis, QgsProcessingParameterDefinition

    flags = getattr(Qgis, "ProcessingParameterFlag", None)  # QGIS >= 3.36
    return flags.Optional if flags is not None else QgsProcessingParameterDefinition.Flag.FlagOptional


def check_inputs(model) -> list[str]:
    """Field inputs whose parent layer input can hold a raster (QGIS's field widget crashes on those)."""
    bad = []
    for p in model.parameterDefinitions():
        if p.type() == "field":
            parent = model.parameterDefinition(p.parentLayerParameterName())
            if parent is None or parent.type() not in ("vector", "source"):
                kind = parent.type() if parent is not None else "missing"
                bad.append(f"{p.name()}: parent {p.parentLayerParameterName()} is a {kind} input")
    return bad


def build():
    """The model (needs a running QgsApplication with the deeplandcover provider registered)."""
    from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingModelParameter
    from qgis.PyQt.QtCore import QPointF

    model = QgsProcessingModelAlgorithm(MODEL_NAME, MODEL_GROUP, "deeplandcover")
    model.setHelpContent({"ALG_DESC": HELP})
    for k, spec in enumerate(INPUTS):
        model.addModelParameter(_input_definition(spec), QgsProcessingModelParameter(spec.name))
        model.parameterComponent(spec.name).setPosition(QPointF(120 + 210 * k, 60))
    model.setParameterOrder([spec.name for spec in INPUTS])
    done: set[str] = set()
    for index, (cid, alg_id, bindings) in enumerate(CHILDREN):
        _child(model, cid, alg_id, bindings, index, done)
        done.add(cid)
    bad = check_inputs(model)
    if bad:
        raise ModelError("inputs that crash QGIS's dialogs: " + "; ".join(bad))
    ok, problems = model.validate()
    if not ok:
        raise ModelError("the generated model does not validate: " + "; ".join(problems))
    return model


def generate(path: Path) -> None:
    """Write the model to ``path`` (raises :class:`ModelError` or OSError).

    Qt writes XML attributes in a per-process random order: the file is rewritten in canonical XML
    (W3C C14N 2.0: attributes sorted), so that the same model gives the same bytes and a readable diff.
    """
    from xml.etree.ElementTree import canonicalize

    path.parent.mkdir(parents=True, exist_ok=True)
    if not build().toFile(str(path)):
        raise OSError(f"QGIS could not write {path}")
    text = canonicalize(path.read_text(encoding="utf-8"))
    path.write_text("<!DOCTYPE model>\n" + text.strip() + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    """Write (or with ``--check`` compare) the shipped model."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    from ...provider.provider import DeepLandCoverProvider

    app = QgsApplication([], False)
    app.initQgis()
    provider = DeepLandCoverProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    if "--check" in argv:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / TARGET.name
            generate(fresh)
            same = TARGET.is_file() and fresh.read_bytes() == TARGET.read_bytes()
        print(f"{TARGET} is {'up to date' if same else 'out of date: run this script without --check'}")
        return 0 if same else 1
    generate(TARGET)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
