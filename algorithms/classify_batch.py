"""Processing algorithm ``deeplandcover:classifybatch`` (Classify Pixels (Batch, Dask)).

Thin wrapper over :func:`core.inference.batch.run.classify_batch`: a folder of rasters (or the blocks of
large rasters) classified in parallel on a Dask cluster, one GeoTIFF per raster/block and a VRT over them.
Parameters -> a :class:`ClassifyBatchPlan` (:meth:`ClassifyBatchAlgorithm.plan`, no side effects) -> core call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..core import deps
from ..core.errors import InputError
from .base import DlcAlgorithm
from .parameters import add_tiling_parameters, advanced, tiling_values
from .qtcompat import FILE_BEHAVIOR_FILE, FILE_BEHAVIOR_FOLDER, NUMBER_INTEGER

if TYPE_CHECKING:
    from ..core.inference.batch.run import BatchOptions
    from ..core.inference.options import ClassifyOptions

HELP = """Classifies every raster of a folder with an ONNX model, in parallel on a Dask cluster.
<p><b>Input folder</b> and <b>pattern</b> (e.g. <code>*.tif</code>, <code>T33*.jp2</code>) select the rasters;
a <code>.vrt</code> mosaic can be selected too. Each raster (or block, see below) becomes one task that reads its
windows, runs the model and writes its own tiled GeoTIFF <code>&lt;name&gt;_class.tif</code> (with a QML style)
into the <b>output folder</b>; a VRT <code>classified.vrt</code> ties them together.</p>
<p><b>Block size</b> (pixels, 0 = whole rasters): cut each raster into blocks of this size, classified as separate
tasks over a margin of whole tiles and cropped, so the mosaic is seamless (identical to classifying the whole
raster at once). Use it for big mosaics: e.g. 4096.</p>
<p><b>Scheduler</b>: leave empty to start a local cluster (one worker process per core, or per GPU with
onnxruntime-gpu; <b>workers</b> overrides the number), or give the address of an existing cluster
(<code>tcp://host:8786</code>, started with <code>dask scheduler</code> and <code>dask worker</code>); the
model and rasters must then be readable at the same paths on every worker.</p>
<p><b>Resumable</b>: a re-run skips outputs that are complete for the same model and settings (a JSON sidecar
records them); delete an output to recompute it, or tick <b>overwrite finished outputs</b>. A task that fails is
retried twice and reported; the others go on (the number of failed tasks is an output).</p>
<p>Block size, scheduler, local workers, tiling and overwrite are under <b>Advanced parameters</b>.</p>"""


@dataclass(frozen=True)
class ClassifyBatchPlan:
    """What :class:`ClassifyBatchAlgorithm` runs: the arguments of :func:`core.inference.batch.run.classify_batch`.

    Attributes:
        inputs: the input folder. model: the ``.onnx`` file. out_dir: the output folder.
        options: scheduling, blocks, resuming. classify: how each raster or block is classified.
    """

    inputs: str
    model: str
    out_dir: str
    options: BatchOptions
    classify: ClassifyOptions


class ClassifyBatchAlgorithm(DlcAlgorithm):
    """Classify a folder of rasters on a Dask cluster (``deeplandcover:classifybatch``)."""

    ALG_NAME = "classifybatch"
    ALG_DISPLAY = "Classify Pixels (Batch, Dask)"
    ALG_GROUP = "3. Classification"
    ALG_GROUP_ID = "inference"
    REQUIREMENTS = deps.BATCH
    HELP = HELP
    SHORT = "Classify a folder of rasters (or the blocks of a huge mosaic) in parallel on a Dask cluster."
    HELP_PAGE = "docs/classifybatch.md"

    INPUT_FOLDER = "INPUT_FOLDER"
    PATTERN = "PATTERN"
    MODEL = "MODEL"
    SCHEDULER = "SCHEDULER"
    WORKERS = "WORKERS"
    BLOCK_SIZE = "BLOCK_SIZE"
    OVERWRITE = "OVERWRITE"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    OUTPUT_VRT = "OUTPUT_VRT"
    FAILED_COUNT = "FAILED_COUNT"

    def initAlgorithm(self, config=None):
        integer = NUMBER_INTEGER
        self.addParameter(QgsProcessingParameterFile(self.INPUT_FOLDER, self.tr("Input folder"), FILE_BEHAVIOR_FOLDER))
        self.addParameter(QgsProcessingParameterString(self.PATTERN, self.tr("File pattern"), "*.tif"))
        self.addParameter(
            QgsProcessingParameterFile(self.MODEL, self.tr("Model (.onnx)"), FILE_BEHAVIOR_FILE, extension="onnx")
        )
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Output folder")))
        for p in (
            QgsProcessingParameterString(self.SCHEDULER, self.tr("Dask scheduler address"), "", optional=True),
            QgsProcessingParameterNumber(
                self.WORKERS, self.tr("Local workers (0 = automatic)"), integer, 0, minValue=0
            ),
            QgsProcessingParameterNumber(
                self.BLOCK_SIZE, self.tr("Block size (px, 0 = whole rasters)"), integer, 0, minValue=0
            ),
        ):
            self.addParameter(advanced(p))
        add_tiling_parameters(self)
        self.addParameter(
            advanced(QgsProcessingParameterBoolean(self.OVERWRITE, self.tr("Overwrite finished outputs"), False))
        )
        self.addOutput(QgsProcessingOutputFile(self.OUTPUT_VRT, self.tr("Mosaic (VRT)")))
        self.addOutput(QgsProcessingOutputNumber(self.FAILED_COUNT, self.tr("Failed tasks")))

    def plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> ClassifyBatchPlan:
        """What :meth:`run_core` will run for ``parameters`` (no side effects).

        Raises:
            InputError: the input folder does not exist.
        """
        from ..core.inference.batch.run import BatchOptions
        from ..core.inference.options import ClassifyOptions

        folder = self.parameterAsFile(parameters, self.INPUT_FOLDER, context)
        if not folder or not Path(folder).is_dir():
            raise InputError(f"Input folder {folder!r} does not exist; choose the folder holding the rasters.")
        tiling = tiling_values(self, parameters, context)
        return ClassifyBatchPlan(
            inputs=folder,
            model=self.parameterAsFile(parameters, self.MODEL, context),
            out_dir=self.parameterAsString(parameters, self.OUTPUT_FOLDER, context),
            options=BatchOptions(
                scheduler=(self.parameterAsString(parameters, self.SCHEDULER, context) or "").strip() or None,
                n_workers=self.parameterAsInt(parameters, self.WORKERS, context) or None,
                block_size=self.parameterAsInt(parameters, self.BLOCK_SIZE, context) or None,
                overwrite=self.parameterAsBoolean(parameters, self.OVERWRITE, context),
                pattern=(self.parameterAsString(parameters, self.PATTERN, context) or "*.tif").strip(),
            ),
            classify=ClassifyOptions(tile_size=tiling.tile_size, overlap=tiling.overlap, batch_size=tiling.batch_size),
        )

    def run_core(self, parameters: dict[str, Any], context: QgsProcessingContext, feedback) -> dict[str, Any]:
        from ..core.inference.batch.run import classify_batch

        plan = self.plan(parameters, context)
        res = classify_batch(plan.inputs, plan.model, plan.out_dir, plan.options, plan.classify, feedback=feedback)
        for f in res.failed:
            feedback.warning(f"{f.name} failed: {f.error}")
        feedback.info(
            f"{len(res.computed)} output(s) computed, {len(res.skipped)} already finished, "
            f"{len(res.empty)} empty, {len(res.failed)} failed, in {res.seconds:.1f} s on "
            f"{res.n_workers} worker(s)."
        )
        return {
            self.OUTPUT_FOLDER: plan.out_dir,
            self.OUTPUT_VRT: str(res.vrt) if res.vrt else None,
            self.FAILED_COUNT: len(res.failed),
        }
