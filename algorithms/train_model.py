"""Processing algorithm ``deeplandcover:trainmodel`` (Train Model).

Thin wrapper over :func:`core.train.train_model`; counterpart of ArcGIS "Train Deep Learning Model".
Parameters become a :class:`core.train.TrainConfig` in :func:`config_from_values` (a pure function the
tests check without training).
"""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..core import deps
from ..core.errors import InputError
from .base import DlcAlgorithm
from .qtcompat import FILE_BEHAVIOR_FOLDER, NUMBER_DOUBLE, NUMBER_INTEGER

ARCHITECTURES = ["unet", "deeplabv3plus", "unet_convlstm", "unet_early_fusion", "two_branch_unet"]
BACKBONES = ["resnet18", "resnet34", "resnet50"]
MONITORS = ["val_loss", "miou", "f1"]
CLASS_WEIGHTS = ["none", "inverse", "median"]
LOSSES = ["ce", "ce_jaccard", "focal"]
DEVICES = ["auto", "cpu", "cuda"]
SCHEDULES = ["plateau", "cosine"]

HELP = """Trains a pixel-classification model on chip folders made by <i>Export Training Tiles</i> (or ArcGIS
"Export Training Data For Deep Learning", Classified Tiles) and exports it as an ONNX model with its model card.
<p><b>Architectures</b>: U-Net (32 base filters, batch norm), DeepLabv3+ (ResNet-18/34/50 encoder, ASPP),
U-Net+ConvLSTM for time-series chips (a shared U-Net per date, two ConvLSTM layers), U-Net early fusion for two-date
change chips, two-branch U-Net for multi-sensor chips (one encoder per sensor, loss 0.7 main + 0.3 auxiliary heads).</p>
<p><b>Spectral indices</b> (e.g. <code>NDVI,NDWI,NDBI</code>): added as input channels after each date's bands, computed
from the bands by name (Sentinel-2 B03/B04/B08/B11, Landsat 8/9 B3/B4/B5/B6); Classify Pixels recomputes them.
<b>Sequence length</b> (time series, 0 = all dates): the model takes this many dates; with <b>random sequences</b>
each training sample draws that many dates at random (sorted by time), validation and inference use evenly spaced
fixed dates (listed in the model card).</p>
<p><b>Validation</b> uses whole spatial blocks of chips (blocks marked "holdout" always), and training chips
overlapping validation chips are dropped, so the scores are not inflated by leakage. Nodata and unlabelled (255)
pixels are excluded from the loss and the scores.</p>
<p><b>Learning rate</b>: leave empty to run an LR range test. <b>Early stopping</b> after <i>patience</i> epochs without an
improvement of the monitored value larger than <i>min delta</i>. <b>Loss</b>: cross-entropy, cross-entropy + log-Jaccard
(alpha weights the CE), or focal. <b>Class weights</b>: inverse frequency or median frequency balancing.</p>
<p><b>Resume</b> continues from a checkpoint (<code>last.pt</code> or <code>model.pt</code>); <b>fine-tune</b> starts from a
previous model's weights (<code>model.pt</code>, or the <code>model.onnx</code> with its <code>model.pt</code> beside it).</p>
<p><b>Outputs</b> in the output folder: <code>model.onnx</code> (softmax probabilities, model card in the metadata, runs in
Classify Pixels and Deepness), <code>model.pt</code> (best checkpoint), <code>last.pt</code>, <code>training_log.csv</code>
and <code>report.html</code> (curves, per-class metrics, confusion matrix, ONNX check). Canceling keeps the best
checkpoint so far.</p>"""


def split_folders(first: str, additional: str) -> list[str]:
    """The chip folders: ``first`` plus ``additional`` (separated by ``;``), empty entries and duplicates removed."""
    out = []
    for f in [first, *(additional or "").split(";")]:
        f = (f or "").strip().strip('"')
        if f and f not in out:
            out.append(f)
    if not out:
        raise InputError("Choose a chip folder (INPUT) made by Export Training Tiles.")
    return out


def config_from_values(v: dict[str, Any]):
    """Turn evaluated parameter values into a :class:`core.train.TrainConfig` (no side effects).

    ``v`` holds the parameter keys with enum values as indices and ``LEARNING_RATE`` None when empty.
    """
    from ..core.training.trainer import TrainConfig

    arch = ARCHITECTURES[v["ARCHITECTURE"]]
    lr = v.get("LEARNING_RATE")
    return TrainConfig(
        architecture=arch, epochs=int(v["EPOCHS"]), batch_size=int(v["BATCH_SIZE"]),
        lr=float(lr) if lr not in (None, "") and float(lr) > 0 else None,
        val_fraction=float(v["VALIDATION_FRACTION"]), patience=int(v["PATIENCE"]), min_delta=float(v["MIN_DELTA"]),
        monitor=MONITORS[v["MONITOR"]], class_weights=CLASS_WEIGHTS[v["CLASS_WEIGHTS"]], loss=LOSSES[v["LOSS"]],
        jaccard_alpha=float(v["JACCARD_ALPHA"]), augment=bool(v["AUGMENT"]), seed=int(v["SEED"]),
        device=DEVICES[v["DEVICE"]], resume=v.get("RESUME") or None, finetune=v.get("FINETUNE") or None,
        base_filters=int(v["BASE_FILTERS"]), depth=int(v["DEPTH"]), backbone=BACKBONES[v["BACKBONE"]],
        schedule=SCHEDULES[v.get("SCHEDULE", 0)], warmup_epochs=int(v.get("WARMUP_EPOCHS", 1)),
        indices=str(v.get("INDICES") or ""), sequence_length=int(v.get("SEQUENCE_LENGTH") or 0),
        random_sequences=bool(v.get("RANDOM_SEQUENCES", False)),
    )


class TrainModelAlgorithm(DlcAlgorithm):
    """Train a U-Net / DeepLabv3+ / U-Net+ConvLSTM / early-fusion U-Net on chip folders; export ONNX."""

    ALG_NAME = "trainmodel"
    ALG_DISPLAY = "Train Model"
    ALG_GROUP = "Training"
    ALG_GROUP_ID = "training"
    REQUIREMENTS = deps.TRAINING
    HELP = HELP

    def initAlgorithm(self, config=None):  # noqa: D102
        P = QgsProcessingParameterNumber
        self.addParameter(QgsProcessingParameterFile("INPUT", self.tr("Chip folder"), behavior=FILE_BEHAVIOR_FOLDER))
        self.addParameter(QgsProcessingParameterString(
            "ADDITIONAL_INPUTS", self.tr("Additional chip folders (separated by ;)"), optional=True))
        self.addParameter(QgsProcessingParameterEnum("ARCHITECTURE", self.tr("Architecture"), ARCHITECTURES, defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum("BACKBONE", self.tr("DeepLabv3+ encoder"), BACKBONES, defaultValue=0))
        self.addParameter(P("BASE_FILTERS", self.tr("U-Net base filters"), NUMBER_INTEGER, 32, minValue=4, maxValue=256))
        self.addParameter(P("DEPTH", self.tr("U-Net depth (poolings)"), NUMBER_INTEGER, 4, minValue=1, maxValue=6))
        self.addParameter(P("EPOCHS", self.tr("Maximum epochs"), NUMBER_INTEGER, 20, minValue=1, maxValue=10000))
        self.addParameter(P("BATCH_SIZE", self.tr("Batch size"), NUMBER_INTEGER, 8, minValue=1, maxValue=4096))
        self.addParameter(P("LEARNING_RATE", self.tr("Learning rate (empty = find automatically)"), NUMBER_DOUBLE,
                            None, optional=True, minValue=0.0, maxValue=1.0))
        self.addParameter(P("VALIDATION_FRACTION", self.tr("Validation fraction (spatial blocks)"), NUMBER_DOUBLE, 0.2,
                            minValue=0.01, maxValue=0.9))
        self.addParameter(P("PATIENCE", self.tr("Early stopping patience (epochs)"), NUMBER_INTEGER, 5, minValue=1))
        self.addParameter(P("MIN_DELTA", self.tr("Early stopping minimum improvement"), NUMBER_DOUBLE, 0.001, minValue=0.0))
        self.addParameter(QgsProcessingParameterEnum("MONITOR", self.tr("Monitored metric"), MONITORS, defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum("CLASS_WEIGHTS", self.tr("Class weights"), CLASS_WEIGHTS, defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum("LOSS", self.tr("Loss"), LOSSES, defaultValue=0))
        self.addParameter(P("JACCARD_ALPHA", self.tr("Alpha of CE + log-Jaccard (weight of the CE)"), NUMBER_DOUBLE, 0.5,
                            minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterEnum(
            "SCHEDULE", self.tr("Learning-rate schedule (plateau: reduce on plateau; cosine: warm-up + cosine decay)"),
            SCHEDULES, defaultValue=0))
        self.addParameter(P("WARMUP_EPOCHS", self.tr("Warm-up epochs (cosine schedule)"), NUMBER_INTEGER, 1, minValue=0))
        self.addParameter(QgsProcessingParameterString(
            "INDICES", self.tr("Spectral indices as extra inputs (e.g. NDVI,NDWI,NDBI)"), optional=True))
        self.addParameter(P("SEQUENCE_LENGTH", self.tr("Dates per sequence (time series; 0 = all)"), NUMBER_INTEGER, 0,
                            minValue=0))
        self.addParameter(QgsProcessingParameterBoolean(
            "RANDOM_SEQUENCES", self.tr("Random sequences (draw the dates of each training sample at random)"), False))
        self.addParameter(QgsProcessingParameterBoolean("AUGMENT", self.tr("Augment (flips and 90° rotations)"), True))
        self.addParameter(P("SEED", self.tr("Random seed"), NUMBER_INTEGER, 42))
        self.addParameter(QgsProcessingParameterEnum("DEVICE", self.tr("Device"), DEVICES, defaultValue=0))
        self.addParameter(QgsProcessingParameterFile("RESUME", self.tr("Resume from checkpoint (.pt)"), extension="pt",
                                                     optional=True))
        self.addParameter(QgsProcessingParameterFile("FINETUNE", self.tr("Fine-tune from model (.pt or .onnx)"),
                                                     fileFilter="Models (*.pt *.onnx)", optional=True))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", self.tr("Output folder")))
        self.addOutput(QgsProcessingOutputFile("OUTPUT_MODEL", self.tr("ONNX model")))
        self.addOutput(QgsProcessingOutputFile("REPORT", self.tr("Training report")))
        self.addOutput(QgsProcessingOutputNumber("VAL_OA", self.tr("Validation overall accuracy")))
        self.addOutput(QgsProcessingOutputNumber("VAL_MIOU", self.tr("Validation mean IoU")))

    def values(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """Evaluated parameter values (enums as indices, empty optional values as None)."""
        v: dict[str, Any] = {}
        for k in ("ARCHITECTURE", "BACKBONE", "MONITOR", "CLASS_WEIGHTS", "LOSS", "DEVICE", "SCHEDULE"):
            v[k] = self.parameterAsEnum(parameters, k, context)
        for k in ("BASE_FILTERS", "DEPTH", "EPOCHS", "BATCH_SIZE", "PATIENCE", "SEED", "WARMUP_EPOCHS", "SEQUENCE_LENGTH"):
            v[k] = self.parameterAsInt(parameters, k, context)
        for k in ("VALIDATION_FRACTION", "MIN_DELTA", "JACCARD_ALPHA"):
            v[k] = self.parameterAsDouble(parameters, k, context)
        lr = parameters.get("LEARNING_RATE")
        v["LEARNING_RATE"] = self.parameterAsDouble(parameters, "LEARNING_RATE", context) if lr not in (None, "") else None
        v["AUGMENT"] = self.parameterAsBool(parameters, "AUGMENT", context)
        v["RANDOM_SEQUENCES"] = self.parameterAsBool(parameters, "RANDOM_SEQUENCES", context)
        v["INDICES"] = self.parameterAsString(parameters, "INDICES", context) or ""
        v["RESUME"] = self.parameterAsFile(parameters, "RESUME", context) or None
        v["FINETUNE"] = self.parameterAsFile(parameters, "FINETUNE", context) or None
        return v

    def run_core(self, parameters: dict[str, Any], context: QgsProcessingContext, feedback) -> dict[str, Any]:  # noqa: D102
        from ..core.training.trainer import train_model

        folders = split_folders(self.parameterAsFile(parameters, "INPUT", context),
                                self.parameterAsString(parameters, "ADDITIONAL_INPUTS", context))
        out_dir = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
        if not out_dir:
            raise InputError("Choose an output folder (OUTPUT_FOLDER).")
        config = config_from_values(self.values(parameters, context))
        feedback.info(f"Training {config.architecture} on {len(folders)} chip folder(s) into {out_dir}.")
        res = train_model(folders, out_dir, config, feedback)
        return {"OUTPUT_MODEL": str(res.model_path), "OUTPUT_FOLDER": str(res.out_dir), "REPORT": str(res.report_path),
                "VAL_OA": float(res.metrics["oa"]), "VAL_MIOU": float(res.metrics["miou"])}
