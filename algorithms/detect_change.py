"""Processing algorithm ``deeplandcover:detectchange`` (Detect Change).

Parameters -> a :class:`ChangePlan` (pure, tested without running) -> one of the three functions of
:mod:`core.change`. Counterpart of ArcGIS "Compute Change Raster" and "Detect Change Using Deep Learning".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core import deps
from ..core.errors import InputError
from .base import DlcAlgorithm, layer_path
from .qtcompat import NUMBER_DOUBLE, NUMBER_INTEGER

MODES = ["from_to", "model", "cva"]

HELP = """Maps change between two dates, three ways:
<p><b>0 Post-classification (from-to)</b>: INPUT and INPUT2 are two classifications (e.g. two Classify Pixels
outputs). Every pixel gets one value per transition, named like <i>forest -&gt; cultivated land</i>
(value = index_from x K_to + index_to + 1, 0 = nodata), with a colour table and style. <b>Changed only</b> gives all
unchanged pixels one "no change" value. The second raster is aligned onto the first with nearest neighbour. The
optional table lists every transition with pixels, m², ha and the % of the from-class. Both rasters must give each
class value the same name (from their QML styles or the <b>class table</b> CSV <code>value,name[,color]</code>).</p>
<p><b>1 Deep-learning change model</b>: INPUT and INPUT2 are the images of the two dates (same bands, same grid)
and MODEL a change model trained on two-date chips (binary change or "to class"/"no change" labels). It runs through
the same tiled engine as Classify Pixels: TILE_SIZE (0 = the model's), OVERLAP (-1 = the model's), BATCH_SIZE and
DEVICE mean the same there; probabilities are optional.</p>
<p><b>2 Change vector analysis</b> (no training): magnitude of the standardised band difference, thresholded at
THRESHOLD or, when empty, with Otsu's method; output 1 = change, 0 = no change. The optional probability output
receives the magnitude.</p>
<p><b>Minimum mapping unit</b> (modes 0): changed patches smaller than this many pixels are removed (GDAL sieve,
8-connected).</p>"""


@dataclass
class ChangePlan:
    """What :class:`DetectChangeAlgorithm` will run (built from parameter values, no I/O).

    Attributes:
        mode: ``"from_to"``, ``"model"`` or ``"cva"``.
        before, after, output: raster paths. model: ONNX path (mode ``model``).
        kwargs: keyword arguments of the core function.
    """

    mode: str
    before: str
    after: str
    output: str
    model: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


def build_plan(mode: int, before: str, after: str, output: str, *, model: str = "", class_table: str = "",
               changed_only: bool = False, mmu: int = 0, threshold: float | None = None, tile_size: int = 0,
               overlap: int = -1, batch_size: int = 4, device: str = "auto", probabilities: str = "",
               table: str = "") -> ChangePlan:
    """Turn parameter values into a :class:`ChangePlan`.

    Raises:
        InputError: an unknown mode, or a mode-1 run without a model.
    """
    if mode not in range(len(MODES)):
        raise InputError(f"MODE must be 0 (from-to), 1 (change model) or 2 (change vector analysis), got {mode}.")
    name = MODES[mode]
    if name == "from_to":
        kw: dict[str, Any] = {"changed_only": bool(changed_only), "mmu_px": int(mmu),
                              "transition_table_path": table or None}
        if class_table:
            kw.update(classes_before=class_table, classes_after=class_table)
        return ChangePlan(name, before, after, output, kwargs=kw)
    if name == "model":
        if not model:
            raise InputError("Mode 1 (deep-learning change) needs a change model (.onnx) in MODEL.")
        kw = {"prob_path": probabilities or None, "table_path": table or None, "tile_size": int(tile_size) or None,
              "overlap": None if overlap is None or overlap < 0 else int(overlap), "batch_size": int(batch_size),
              "device": (device or "auto").strip()}
        return ChangePlan(name, before, after, output, model=model, kwargs=kw)
    return ChangePlan(name, before, after, output, kwargs={"threshold": threshold, "magnitude_path": probabilities or None})


def run_plan(plan: ChangePlan, feedback) -> tuple[Path | None, dict[str, Any]]:
    """Execute a plan with core; returns (QML of the output or None, extra result values)."""
    from ..core.change import from_to as change

    if plan.mode == "from_to":
        r = change.from_to_change(plan.before, plan.after, plan.output, feedback=feedback, **plan.kwargs)
        return r.qml, {"CHANGED_PIXELS": r.stats["changed_pixels"], "_table": r.table}
    if plan.mode == "model":
        r = change.detect_change_with_model(plan.before, plan.after, plan.model, plan.output, feedback=feedback,
                                            **plan.kwargs)
        return r.qml, {"_table": r.area_table, "_prob": r.probabilities}
    r = change.change_vector_analysis(plan.before, plan.after, plan.output, feedback=feedback, **plan.kwargs)
    return r.qml, {"CHANGED_PIXELS": r.counts.get(1, 0), "THRESHOLD": r.threshold, "_prob": r.magnitude}


class _LoadStyle(QgsProcessingLayerPostProcessorInterface):
    """Applies a QML style to an output layer when Processing loads it."""

    _keep: list = []  # post-processors must outlive run(); Processing does not own Python objects

    def __init__(self, qml: str) -> None:
        super().__init__()
        self.qml = qml

    def postProcessLayer(self, layer, context, feedback):  # noqa: D102, N802
        if layer is not None and Path(self.qml).is_file():
            layer.loadNamedStyle(self.qml)
            layer.triggerRepaint()

    @classmethod
    def create(cls, qml: str) -> _LoadStyle:
        p = cls(qml)
        cls._keep.append(p)
        return p


class DetectChangeAlgorithm(DlcAlgorithm):
    """From-to change, change-model inference or change vector analysis between two dates."""

    ALG_NAME = "detectchange"
    ALG_DISPLAY = "Detect Change"
    ALG_GROUP = "Change detection"
    ALG_GROUP_ID = "change"
    REQUIREMENTS = deps.INFERENCE
    HELP = HELP

    def initAlgorithm(self, config=None):  # noqa: D102
        P = QgsProcessingParameterNumber
        self.addParameter(QgsProcessingParameterEnum(
            "MODE", self.tr("Method"), options=[self.tr("Post-classification from-to change (two classifications)"),
                                                self.tr("Deep-learning change model (two images)"),
                                                self.tr("Change vector analysis, no training (two images)")],
            defaultValue=0))
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", self.tr("Date 1 (classification or image)")))
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT2", self.tr("Date 2 (classification or image)")))
        self.addParameter(QgsProcessingParameterFile("MODEL", self.tr("Change model (.onnx, method 1)"),
                                                     extension="onnx", optional=True))
        self.addParameter(QgsProcessingParameterFile("CLASS_TABLE", self.tr("Class table CSV (value,name[,color])"),
                                                     extension="csv", optional=True))
        self.addParameter(QgsProcessingParameterBoolean("CHANGED_ONLY", self.tr("Changed pixels only"), False))
        self.addParameter(P("MIN_MAPPING_UNIT", self.tr("Minimum mapping unit of changes (pixels, 0 = none)"),
                            NUMBER_INTEGER, 0, minValue=0))
        self.addParameter(P("THRESHOLD", self.tr("Change magnitude threshold (method 2; empty = Otsu)"), NUMBER_DOUBLE,
                            None, optional=True, minValue=0.0))
        self.add_tiling_parameters()
        self.addParameter(QgsProcessingParameterString("DEVICE", self.tr("Device (auto, cpu, cuda, cuda:1, tensorrt)"), "auto"))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", self.tr("Change raster")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_PROBABILITIES", self.tr("Change probabilities (method 1) / magnitude (method 2)"), optional=True,
            createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_TABLE", self.tr("Transition / area table"), "CSV files (*.csv)", optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber("CHANGED_PIXELS", self.tr("Changed pixels")))
        self.addOutput(QgsProcessingOutputNumber("THRESHOLD_USED", self.tr("Threshold used (method 2)")))

    def run_core(self, parameters: dict[str, Any], context: QgsProcessingContext, feedback) -> dict[str, Any]:  # noqa: D102
        r1 = self.parameterAsRasterLayer(parameters, "INPUT", context)
        r2 = self.parameterAsRasterLayer(parameters, "INPUT2", context)
        if r1 is None or r2 is None:
            raise InputError("Choose the rasters of both dates (INPUT and INPUT2).")
        has_thr = parameters.get("THRESHOLD") not in (None, "")
        out = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        probs = self.parameterAsOutputLayer(parameters, "OUTPUT_PROBABILITIES", context)
        table = self.parameterAsFileOutput(parameters, "OUTPUT_TABLE", context)
        plan = build_plan(
            self.parameterAsEnum(parameters, "MODE", context), layer_path(r1), layer_path(r2), out,
            model=self.parameterAsFile(parameters, "MODEL", context),
            class_table=self.parameterAsFile(parameters, "CLASS_TABLE", context),
            changed_only=self.parameterAsBoolean(parameters, "CHANGED_ONLY", context),
            mmu=self.parameterAsInt(parameters, "MIN_MAPPING_UNIT", context),
            threshold=self.parameterAsDouble(parameters, "THRESHOLD", context) if has_thr else None,
            tile_size=self.parameterAsInt(parameters, "TILE_SIZE", context),
            overlap=self.parameterAsInt(parameters, "OVERLAP", context),
            batch_size=self.parameterAsInt(parameters, "BATCH_SIZE", context),
            device=self.parameterAsString(parameters, "DEVICE", context), probabilities=probs, table=table)
        qml, extra = run_plan(plan, feedback)
        if qml and context.willLoadLayerOnCompletion(out):
            context.layerToLoadOnCompletionDetails(out).setPostProcessor(_LoadStyle.create(str(qml)))
        results: dict[str, Any] = {"OUTPUT": out, "CHANGED_PIXELS": extra.get("CHANGED_PIXELS"),
                                   "THRESHOLD_USED": extra.get("THRESHOLD")}
        if extra.get("_prob"):
            results["OUTPUT_PROBABILITIES"] = str(extra["_prob"])
        if extra.get("_table"):
            results["OUTPUT_TABLE"] = str(extra["_table"])
        return results
