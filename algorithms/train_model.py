"""Processing algorithm ``deeplandcover:trainmodel`` (Train Model).

Thin wrapper over :func:`core.training.trainer.train_model`; counterpart of ArcGIS "Train Deep Learning
Model". :meth:`TrainModelAlgorithm.plan` turns the parameters into a :class:`TrainPlan` (the chip folders,
the output folder and a :class:`core.training.config.TrainConfig`) without side effects, so the tests
compare it as a whole; the enum options are the choices of :data:`core.training.config.CHOICES`.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from ..core.training.config import CHOICES, TrainConfig
from ..core.training.weights_catalog import CATALOG
from .base import DlcAlgorithm
from .parameters import DEVICE, THREADS, add_device_parameters, advanced, device_value
from .qtcompat import FILE_BEHAVIOR_FILE, FILE_BEHAVIOR_FOLDER, NUMBER_DOUBLE, NUMBER_INTEGER
from .train_choices import CHOICE_LABELS, WEIGHTS_CHOICES, weights_label
from .wording import temporary_output_warning

#: The dialog's defaults are Train Model's (:class:`TrainConfig`), which the recipe benchmark chose.
DEFAULTS = TrainConfig()

HELP = """Trains a pixel-classification model on chip folders made by <i>Export Training Tiles</i> (or ArcGIS
"Export Training Data For Deep Learning", Classified Tiles) and exports it as an ONNX model with its model card.
<p><b>Architectures</b>: U-Net (16 base filters and 3 poolings by default, batch norm), DeepLabv3+ (ResNet-18/34/50 encoder, ASPP),
U-Net+ConvLSTM for time-series chips (a shared U-Net per date, two ConvLSTM layers), U-Net early fusion for two-date
change chips, FC-Siam-diff and FC-Siam-conc for two-date change chips (Caye Daudt et al. 2018: one encoder shared by
both dates; the change threshold is then tuned on the validation chips and built into the model), two-branch U-Net
for multi-sensor chips (one encoder per sensor, loss 0.7 main + 0.3 auxiliary heads), Presto for time-series chips
(Tseng et al. 2023: a pixel time-series transformer that starts from its authors' pre-trained weights), Dynamic World
for Sentinel-2 L1C chips (Brown et al. 2022: the authors' land-cover network under a new head for your classes, its 9
bands picked by name, its normalisation; learning rate 0.01 with the encoder factor 0.03 works best).
<b>Encoder</b>: a ResNet-18/34/50 gives U-Net (and U-Net early fusion) a ResNet encoder.</p>
<p><b>Pre-trained weights</b>: by default none (random start), except Presto and Dynamic World, which start from
their authors' weights (the training command line trains them from random weights, as a control:
<code>python -m deeplandcover.core.training ... --encoder-weights none</code>). For a ResNet encoder of the same depth: ImageNet ResNets (RGB), SSL4EO-S12 and
SatlasPretrain Sentinel-2 ResNets, downloaded once into the user cache with a SHA-256 check; or, under Advanced, a
<b>weights file</b> (<code>.pth</code> state dict in torchvision names), which replaces the choice. First-layer filters are matched to your bands by name (B01...B12, B8A; red/green/blue =
B04/B03/B02) in your order; other bands (indices, other sensors) get the mean filter, a red-band copy or random
filters. The weights' normalisation is used and written into the model card. The encoder is frozen for the first
epochs, then trained at a lower learning rate.</p>
<p><b>Indices</b> (spectral indices, e.g. <code>NDVI,NDWI,NDBI</code>): added as input channels after each date's bands, computed
from the bands by name (Sentinel-2 B03/B04/B08/B11, Landsat 8/9 B3/B4/B5/B6); Classify Pixels recomputes them.
<b>Sequence length</b> (time series, 0 = all dates): the model takes this many dates; with <b>random sequences</b>
each training sample draws that many dates at random (sorted by time), validation and inference use evenly spaced
fixed dates (listed in the model card).</p>
<p><b>Validation</b> uses whole spatial blocks of chips (blocks marked "holdout" always), and training chips
overlapping validation chips are dropped, so the scores are not inflated by leakage. Nodata and unlabelled (255)
pixels are excluded from the loss and the scores.</p>
<p><b>Defaults</b>: 60 epochs at learning rate 0.003 (1 warm-up epoch, then cosine decay), cross-entropy without
class weights, dihedral augmentation, and the model of the epoch with the best validation mIoU. They were chosen by
measurement: on the demo's spatial hold-out (3 seeds) they score OA 0.58 and mIoU 0.36 where a random forest trained on
the same pixels scores 0.54 and 0.35. On imbalanced chips (one dominant class) choose median class weights: the run
warns when its model predicts one class only.
<b>Learning rate</b>: leave empty to run an LR range test. <b>Early stopping</b> after <b>patience</b> epochs (default 20)
without an improvement of the monitored metric larger than the <b>minimum improvement</b> (the measured figures above
ran all 60 epochs). <b>Loss</b>: cross-entropy, cross-entropy + log-Jaccard
(alpha weights the CE), or focal. <b>Class weights</b>: inverse frequency or median frequency balancing.</p>
<p><b>Device</b>: automatic (CUDA GPU when PyTorch sees one), CPU or GPU (CUDA; GPU (TensorRT) trains on CUDA too). <b>CPU threads</b> (0 = automatic: the
cores other programs leave free, re-checked while training).
<b>Resume</b> continues from a checkpoint (<code>last.pt</code> or <code>model.pt</code>); <b>fine-tune</b> starts from a
previous model's weights (<code>model.pt</code>, or the <code>model.onnx</code> with its <code>model.pt</code> beside it).</p>
<p><b>Outputs</b> in the output folder: <code>model.onnx</code> (softmax probabilities, model card in the metadata, runs in
Classify Pixels), <code>model_deepness.onnx</code> (the same network with its input fixed to the tile size, for the
Deepness plugin; not for time-series, change, index or multi-sensor models), <code>model.stac-item.json</code> (a STAC
Item with the Machine Learning Model extension; Classify Pixels accepts it as its model), <code>model.pt</code> (best
checkpoint), <code>last.pt</code>, <code>training_log.csv</code> (seconds, chips/s and CPU threads per epoch)
and <code>report.html</code> (curves, per-class metrics, confusion matrix, ONNX check). Canceling keeps the best
checkpoint so far. Left empty, the <b>output folder</b> is a temporary folder that QGIS deletes when it closes:
choose a folder to keep the model.</p>
<p>Everything but the chip folder, architecture, encoder, pre-trained weights, epochs and output folder is under
<b>Advanced parameters</b>.</p>"""

SHORT = "Train a U-Net, DeepLabv3+ or time-series network on chip folders and export it as an ONNX model."


def split_folders(first: str, additional: str) -> list[str]:
    """The chip folders: ``first`` plus ``additional`` (separated by ``;``), empty entries and duplicates removed."""
    out = []
    for f in [first, *(additional or "").split(";")]:
        f = (f or "").strip().strip('"')
        if f and f not in out:
            out.append(f)
    if not out:
        raise InputError("Choose a chip folder made by Export Training Tiles.")
    return out


@dataclass(frozen=True)
class TrainPlan:
    """What :class:`TrainModelAlgorithm` runs: the arguments of :func:`core.training.trainer.train_model`.

    Attributes:
        chip_folders: INPUT, then ADDITIONAL_INPUTS (no duplicates).
        out_dir: OUTPUT_FOLDER.
        config: every other parameter.
    """

    chip_folders: list[str]
    out_dir: str
    config: TrainConfig


class TrainModelAlgorithm(DlcAlgorithm):
    """Train a model of the registry (U-Net, DeepLabv3+, U-Net+ConvLSTM, ...) on chip folders; export ONNX."""

    ALG_NAME = "trainmodel"
    ALG_DISPLAY = "Train Model"
    ALG_GROUP = "2. Training"
    ALG_GROUP_ID = "training"
    REQUIREMENTS = deps.TRAINING
    HELP = HELP
    SHORT = SHORT
    HELP_PAGE = "docs/trainmodel.md"

    INPUT = "INPUT"
    ADDITIONAL_INPUTS = "ADDITIONAL_INPUTS"
    ARCHITECTURE = "ARCHITECTURE"
    BACKBONE = "BACKBONE"
    BASE_FILTERS = "BASE_FILTERS"
    DEPTH = "DEPTH"
    EPOCHS = "EPOCHS"
    BATCH_SIZE = "BATCH_SIZE"
    LEARNING_RATE = "LEARNING_RATE"
    VALIDATION_FRACTION = "VALIDATION_FRACTION"
    PATIENCE = "PATIENCE"
    MIN_DELTA = "MIN_DELTA"
    MONITOR = "MONITOR"
    CLASS_WEIGHTS = "CLASS_WEIGHTS"
    LOSS = "LOSS"
    JACCARD_ALPHA = "JACCARD_ALPHA"
    SCHEDULE = "SCHEDULE"
    WARMUP_EPOCHS = "WARMUP_EPOCHS"
    INDICES = "INDICES"
    SEQUENCE_LENGTH = "SEQUENCE_LENGTH"
    RANDOM_SEQUENCES = "RANDOM_SEQUENCES"
    AUGMENT = "AUGMENT"
    SEED = "SEED"
    DEVICE = DEVICE
    THREADS = THREADS
    ENCODER_WEIGHTS = "ENCODER_WEIGHTS"
    ENCODER_WEIGHTS_FILE = "ENCODER_WEIGHTS_FILE"
    EXTRA_BAND_INIT = "EXTRA_BAND_INIT"
    FREEZE_EPOCHS = "FREEZE_EPOCHS"
    ENCODER_LR_FACTOR = "ENCODER_LR_FACTOR"
    RESUME = "RESUME"
    FINETUNE = "FINETUNE"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    OUTPUT_MODEL = "OUTPUT_MODEL"
    REPORT = "REPORT"
    VAL_OA = "VAL_OA"
    VAL_MIOU = "VAL_MIOU"

    #: Enum parameter -> the :class:`TrainConfig` field whose :data:`CHOICES` are its options (in that order).
    ENUMS = {
        ARCHITECTURE: "architecture",
        BACKBONE: "backbone",
        MONITOR: "monitor",
        CLASS_WEIGHTS: "class_weights",
        LOSS: "loss",
        SCHEDULE: "schedule",
        EXTRA_BAND_INIT: "extra_band_init",
    }

    def initAlgorithm(self, config: dict | None = None) -> None:
        """The six parameters of a first run (chips, architecture, encoder, pre-trained weights, epochs, output
        folder), then the advanced ones."""
        self.addParameter(QgsProcessingParameterFile(self.INPUT, self.tr("Chip folder"), behavior=FILE_BEHAVIOR_FOLDER))
        self._enum(self.ARCHITECTURE, "Architecture")
        self._enum(self.BACKBONE, "Encoder")
        weights = [self.tr(weights_label(n)) for n in WEIGHTS_CHOICES]
        self.addParameter(
            QgsProcessingParameterEnum(self.ENCODER_WEIGHTS, self.tr("Pre-trained weights"), weights, defaultValue=0)
        )
        self._number(
            self.EPOCHS, "Maximum epochs", NUMBER_INTEGER, DEFAULTS.epochs, minValue=1, maxValue=10000, visible=True
        )
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Output folder")))
        self._string(self.ADDITIONAL_INPUTS, "More chip folders")
        self._add_model_parameters()
        self._add_optimisation_parameters()
        self._add_sample_parameters()
        add_device_parameters(self, training=True)
        self.addParameter(
            advanced(
                QgsProcessingParameterFile(
                    self.RESUME, self.tr("Resume checkpoint (.pt)"), extension="pt", optional=True
                )
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterFile(
                    self.FINETUNE, self.tr("Fine-tune from model"), fileFilter="Models (*.pt *.onnx)", optional=True
                )
            )
        )
        self.addOutput(QgsProcessingOutputFile(self.OUTPUT_MODEL, self.tr("ONNX model")))
        self.addOutput(QgsProcessingOutputFile(self.REPORT, self.tr("Training report")))
        self.addOutput(QgsProcessingOutputNumber(self.VAL_OA, self.tr("Validation overall accuracy")))
        self.addOutput(QgsProcessingOutputNumber(self.VAL_MIOU, self.tr("Validation mean IoU")))

    def _add_model_parameters(self) -> None:
        """The weights file, BASE_FILTERS, DEPTH and the pre-trained encoder's options (advanced)."""
        self.addParameter(
            advanced(
                QgsProcessingParameterFile(
                    self.ENCODER_WEIGHTS_FILE,
                    self.tr("Weights file (.pth)"),
                    FILE_BEHAVIOR_FILE,
                    fileFilter="PyTorch state dicts (*.pth *.pt)",
                    optional=True,
                )
            )
        )
        self._number(
            self.BASE_FILTERS, "U-Net base filters", NUMBER_INTEGER, DEFAULTS.base_filters, minValue=4, maxValue=256
        )
        self._number(self.DEPTH, "U-Net depth (poolings)", NUMBER_INTEGER, DEFAULTS.depth, minValue=1, maxValue=6)
        self._enum(self.EXTRA_BAND_INIT, "Filters for unknown bands", visible=False)
        freeze = "Frozen encoder epochs"
        self._number(self.FREEZE_EPOCHS, freeze, NUMBER_INTEGER, DEFAULTS.freeze_epochs, minValue=0, maxValue=1000)
        factor = "Encoder learning rate factor"
        self._number(
            self.ENCODER_LR_FACTOR, factor, NUMBER_DOUBLE, DEFAULTS.encoder_lr_factor, minValue=0.001, maxValue=10.0
        )

    def _add_optimisation_parameters(self) -> None:
        """BATCH_SIZE to WARMUP_EPOCHS: batch, learning rate, validation, early stopping, loss, schedule (advanced)."""
        self._number(self.BATCH_SIZE, "Batch size", NUMBER_INTEGER, DEFAULTS.batch_size, minValue=1, maxValue=4096)
        lr = "Learning rate (or empty)"
        self._number(self.LEARNING_RATE, lr, NUMBER_DOUBLE, DEFAULTS.lr, optional=True, minValue=0.0, maxValue=1.0)
        val = "Validation fraction"
        self._number(self.VALIDATION_FRACTION, val, NUMBER_DOUBLE, DEFAULTS.val_fraction, minValue=0.01, maxValue=0.9)
        self._number(self.PATIENCE, "Early stopping patience (epochs)", NUMBER_INTEGER, DEFAULTS.patience, minValue=1)
        self._number(self.MIN_DELTA, "Minimum improvement", NUMBER_DOUBLE, DEFAULTS.min_delta, minValue=0.0)
        self._enum(self.MONITOR, "Monitored metric", visible=False)
        self._enum(self.CLASS_WEIGHTS, "Class weights", visible=False)
        self._enum(self.LOSS, "Loss", visible=False)
        alpha = "Jaccard loss: CE weight"
        self._number(self.JACCARD_ALPHA, alpha, NUMBER_DOUBLE, DEFAULTS.jaccard_alpha, minValue=0.0, maxValue=1.0)
        self._enum(self.SCHEDULE, "Learning-rate schedule", visible=False)
        self._number(self.WARMUP_EPOCHS, "Warm-up epochs", NUMBER_INTEGER, DEFAULTS.warmup_epochs, minValue=0)

    def _add_sample_parameters(self) -> None:
        """INDICES, SEQUENCE_LENGTH, RANDOM_SEQUENCES, AUGMENT, SEED (advanced)."""
        self._string(self.INDICES, "Indices (e.g. NDVI,NDWI)")
        self._number(
            self.SEQUENCE_LENGTH, "Dates per sequence (0 = all)", NUMBER_INTEGER, DEFAULTS.sequence_length, minValue=0
        )
        self._bool(self.RANDOM_SEQUENCES, "Random dates per sample", DEFAULTS.random_sequences)
        self._bool(self.AUGMENT, "Augment (flips, rotations)", DEFAULTS.augment)
        self._number(self.SEED, "Random seed", NUMBER_INTEGER, DEFAULTS.seed)

    def _enum(self, key: str, label: str, visible: bool = True) -> None:
        """An enum parameter listing the choices of its :class:`TrainConfig` field in the dialog's words (the
        indices are the order of :data:`CHOICES`); the default is the field's."""
        choices = CHOICES[self.ENUMS[key]]
        default = choices.index(getattr(DEFAULTS, self.ENUMS[key]))
        words = [self.tr(CHOICE_LABELS.get(c, c)) for c in choices]
        self._add(QgsProcessingParameterEnum(key, self.tr(label), words, defaultValue=default), visible)

    def _add(self, parameter, visible: bool) -> None:
        self.addParameter(parameter if visible else advanced(parameter))

    def _number(self, key: str, label: str, kind, default, visible: bool = False, **kw) -> None:
        self._add(QgsProcessingParameterNumber(key, self.tr(label), kind, default, **kw), visible)

    def _string(self, key: str, label: str) -> None:
        self._add(QgsProcessingParameterString(key, self.tr(label), optional=True), False)

    def _bool(self, key: str, label: str, default: bool) -> None:
        self._add(QgsProcessingParameterBoolean(key, self.tr(label), default), False)

    def normalized_parameters(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """ENCODER_WEIGHTS given as text (scripts written for the earlier dialogs): a catalogue name becomes its index, a file
        moves to ENCODER_WEIGHTS_FILE, ``""``/``none`` becomes None (index 0)."""
        params = super().normalized_parameters(parameters, context)
        value = params.get(self.ENCODER_WEIGHTS)
        if isinstance(value, str) and not value.strip().isdigit():
            text = value.strip().strip('"')
            if text.lower() in ("", "none"):
                params[self.ENCODER_WEIGHTS] = 0
            elif text in CATALOG:
                params[self.ENCODER_WEIGHTS] = WEIGHTS_CHOICES.index(text)
            else:
                params[self.ENCODER_WEIGHTS] = 0
                params.setdefault(self.ENCODER_WEIGHTS_FILE, text)
        return params

    # -- parameters -> plan -------------------------------------------------------------------
    def plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> TrainPlan:
        """What :meth:`run_core` will run for ``parameters`` (no side effects).

        Raises:
            InputError: no chip folder, or no output folder.
        """
        parameters = self.normalized_parameters(parameters, context)
        folders = split_folders(
            self.parameterAsFile(parameters, self.INPUT, context),
            self.parameterAsString(parameters, self.ADDITIONAL_INPUTS, context),
        )
        out_dir = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        if not out_dir:
            raise InputError("Choose an output folder.")
        return TrainPlan(folders, out_dir, self._config(parameters, context))

    def _config(self, parameters: dict[str, Any], context: QgsProcessingContext) -> TrainConfig:
        """The :class:`TrainConfig` of the parameters; LEARNING_RATE empty or 0 = None (LR range test), left out =
        the default."""
        choice = {
            field: CHOICES[field][self.parameterAsEnum(parameters, key, context)] for key, field in self.ENUMS.items()
        }

        def integer(key: str) -> int:
            return self.parameterAsInt(parameters, key, context)

        def double(key: str) -> float:
            return self.parameterAsDouble(parameters, key, context)

        # an empty field (None / "") asks for the LR range test; a parameter left out takes the default
        cleared = self.LEARNING_RATE in parameters and parameters[self.LEARNING_RATE] in (None, "")
        lr = None if cleared else double(self.LEARNING_RATE)
        return TrainConfig(
            **choice,
            device=device_value(self, parameters, context).replace("tensorrt", "cuda"),  # TensorRT only runs models
            epochs=integer(self.EPOCHS),
            batch_size=integer(self.BATCH_SIZE),
            lr=lr if lr is not None and lr > 0 else None,
            val_fraction=double(self.VALIDATION_FRACTION),
            patience=integer(self.PATIENCE),
            min_delta=double(self.MIN_DELTA),
            jaccard_alpha=double(self.JACCARD_ALPHA),
            augment=self.parameterAsBool(parameters, self.AUGMENT, context),
            seed=integer(self.SEED),
            resume=self.parameterAsFile(parameters, self.RESUME, context) or None,
            finetune=self.parameterAsFile(parameters, self.FINETUNE, context) or None,
            base_filters=integer(self.BASE_FILTERS),
            depth=integer(self.DEPTH),
            warmup_epochs=integer(self.WARMUP_EPOCHS),
            indices=self.parameterAsString(parameters, self.INDICES, context) or "",
            sequence_length=integer(self.SEQUENCE_LENGTH),
            random_sequences=self.parameterAsBool(parameters, self.RANDOM_SEQUENCES, context),
            num_threads=integer(THREADS) or None,
            encoder_weights=self._weights(parameters, context),
            freeze_epochs=integer(self.FREEZE_EPOCHS),
            encoder_lr_factor=double(self.ENCODER_LR_FACTOR),
        )

    def _weights(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str:
        """TrainConfig.encoder_weights: the weights file when one is given, else the chosen catalogue name ("" = none)."""
        path = (self.parameterAsFile(parameters, self.ENCODER_WEIGHTS_FILE, context) or "").strip()
        return path or WEIGHTS_CHOICES[self.parameterAsEnum(parameters, self.ENCODER_WEIGHTS, context)]

    def run_core(self, parameters: dict[str, Any], context: QgsProcessingContext, feedback) -> dict[str, Any]:
        """Train as :meth:`plan` says; the outputs."""
        from ..core.training.trainer import train_model

        plan = self.plan(parameters, context)
        feedback.info(
            f"Training {plan.config.architecture} on {len(plan.chip_folders)} chip folder(s) into {plan.out_dir}."
        )
        res = train_model(plan.chip_folders, plan.out_dir, plan.config, feedback)
        warning = temporary_output_warning(str(res.out_dir), "The model")
        if warning:
            feedback.warning(warning)
        return {
            self.OUTPUT_MODEL: str(res.model_path),
            self.OUTPUT_FOLDER: str(res.out_dir),
            self.REPORT: str(res.report_path),
            self.VAL_OA: float(res.metrics["oa"]),
            self.VAL_MIOU: float(res.metrics["miou"]),
        }
