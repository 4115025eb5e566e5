"""Processing algorithm ``deeplandcover:installdependencies`` (Install Python dependencies).

Thin wrapper over :mod:`core.installer` (:func:`~core.installer.plan.plan`, then
:func:`~core.installer.install.install`): finds what the chosen algorithms miss and installs it with
pip into the plugin's own package folder, with everything QGIS's Python provides pinned.
"""

from __future__ import annotations

import traceback
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputBoolean,
    QgsProcessingOutputFolder,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterString,
)

from ..core.errors import CanceledError, DeepLandCoverError
from ..core.installer.folder import packages_dir
from ..core.installer.gpu import GPU_CHOICES
from ..core.installer.install import install
from ..core.installer.plan import WHAT_CHOICES, plan, requirements_for
from .base import DlcAlgorithm, QgsFeedbackAdapter
from .qtcompat import PARAMETER_FLAG_ADVANCED

WHAT_LABELS = [
    "Inference: Classify Pixels, Detect Change, Export Training Tiles, accuracy (numpy, rasterio, onnxruntime, "
    "geopandas, ...)",
    "Inference + training: adds Train Model (torch, onnx)",
    "Everything, including Classify Pixels (Batch, Dask)",
]
GPU_LABELS = [
    "Auto: GPU builds when an NVIDIA GPU is found",
    "CPU only",
    "NVIDIA GPU (onnxruntime-gpu)",
]

HELP = """Installs the Python packages that the Deep Land Cover algorithms need (numpy, rasterio, onnxruntime,
geopandas, ...; torch and onnx for training; dask for the batch algorithm) with pip, into a folder of
the plugin's own, so that no terminal, OSGeo4W Shell or administrator rights are needed.
<p><b>What to install</b>: the packages of the inference algorithms, of inference and training, or of
everything. Only what is missing or too old is installed; packages that QGIS's Python already provides
are never installed again or replaced (QGIS's NumPy, GDAL and PyQt always stay), and pip is told to
resolve against exactly those versions.</p>
<p><b>GPU</b>: <i>Auto</i> installs <code>onnxruntime-gpu</code> instead of <code>onnxruntime</code> when an
NVIDIA GPU is found (<code>nvidia-smi</code>). On Linux without a GPU, torch comes from PyTorch's CPU
index (no CUDA download). Set the environment variable <code>DLC_TORCH_INDEX_URL</code> to another
index (e.g. a CUDA one for GPU training on Windows) or to an empty value for PyPI only.</p>
<p><b>Dry run</b>: only list what would be installed (pip resolves the versions, nothing is written) and
the pip commands.</p>
<p>The folder is per user and per Python version (<code>DLC_PYTHON_PACKAGES</code> changes it); it is
added to Python's search path after QGIS's own packages when the plugin loads, and right after the
install. A package that was already imported in this QGIS session (for example by another plugin)
is used in its new version only after QGIS is restarted: the log says so. Installing torch downloads
several hundred megabytes. An install that fails or is canceled leaves the folder as it was.</p>"""


class InstallDependenciesAlgorithm(DlcAlgorithm):
    """Install the plugin's Python dependencies with pip (``deeplandcover:installdependencies``)."""

    ALG_NAME = "installdependencies"
    ALG_DISPLAY = "Install Python dependencies"
    ALG_GROUP = "Setup"
    ALG_GROUP_ID = "setup"
    REQUIREMENTS = ()
    HELP = HELP

    WHAT = "WHAT"
    GPU = "GPU"
    DRY_RUN = "DRY_RUN"
    EXTRA_PACKAGES = "EXTRA_PACKAGES"
    TARGET_FOLDER = "TARGET_FOLDER"
    PACKAGES = "PACKAGES"
    PIP_COMMAND = "PIP_COMMAND"
    RESTART_REQUIRED = "RESTART_REQUIRED"

    def shortHelpString(self) -> str:  # noqa: D102
        return super().shortHelpString() + f"<p>Folder: <code>{packages_dir()}</code></p>"

    def initAlgorithm(self, config=None):  # noqa: D102
        self.addParameter(
            QgsProcessingParameterEnum(
                self.WHAT, self.tr("What to install"), [self.tr(s) for s in WHAT_LABELS], defaultValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.GPU, self.tr("GPU"), [self.tr(s) for s in GPU_LABELS], defaultValue=0)
        )
        self.addParameter(
            QgsProcessingParameterBoolean(self.DRY_RUN, self.tr("Dry run: only list what would be installed"), False)
        )
        extra = QgsProcessingParameterString(
            self.EXTRA_PACKAGES,
            self.tr("Additional packages (pip requirements, separated by spaces)"),
            "",
            optional=True,
        )
        extra.setFlags(extra.flags() | PARAMETER_FLAG_ADVANCED)
        self.addParameter(extra)
        self.addOutput(QgsProcessingOutputFolder(self.TARGET_FOLDER, self.tr("Package folder")))
        self.addOutput(QgsProcessingOutputString(self.PACKAGES, self.tr("Installed packages")))
        self.addOutput(QgsProcessingOutputString(self.PIP_COMMAND, self.tr("pip commands")))
        self.addOutput(QgsProcessingOutputBoolean(self.RESTART_REQUIRED, self.tr("QGIS restart required")))

    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        """Like :meth:`DlcAlgorithm.processAlgorithm` without ``isolate_geolibs``.

        Isolating the geospatial wheels here, before they are installed, would mark the isolation
        done for this QGIS session, and the rasterio/shapely installed now would then be loaded
        without it by the next algorithm.
        """
        fb = QgsFeedbackAdapter(feedback)
        try:
            return self.run_core(parameters, context, fb)
        except CanceledError as e:
            raise QgsProcessingException(str(e)) from e
        except DeepLandCoverError as e:
            raise QgsProcessingException(str(e)) from e
        except QgsProcessingException:
            raise
        except Exception as e:  # an unexpected bug: keep the trace in the log, give a readable message
            feedback.reportError(traceback.format_exc(), fatalError=False)
            raise QgsProcessingException(f"{self.displayName()} failed unexpectedly: {type(e).__name__}: {e}") from e

    def run_core(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsFeedbackAdapter
    ) -> dict[str, Any]:  # noqa: D102
        what = WHAT_CHOICES[self.parameterAsEnum(parameters, self.WHAT, context)]
        gpu = GPU_CHOICES[self.parameterAsEnum(parameters, self.GPU, context)]
        dry_run = self.parameterAsBoolean(parameters, self.DRY_RUN, context)
        extra = self.parameterAsString(parameters, self.EXTRA_PACKAGES, context).split()

        batch = ()
        if what == "all":  # whatever Classify Pixels (Batch) checks for (dask, distributed)
            from .classify_batch import ClassifyBatchAlgorithm

            batch = tuple(ClassifyBatchAlgorithm.REQUIREMENTS)
        target = packages_dir()
        feedback.info(f"Package folder: {target}")
        p = plan(requirements_for(what, batch), gpu=gpu, extra_specs=extra, target=target)
        feedback.info(f"onnxruntime build: {'GPU (onnxruntime-gpu)' if p.gpu else 'CPU'}")
        if p.satisfied:
            feedback.info("Already installed: " + ", ".join(p.satisfied))
        for msg in p.unfixable:
            feedback.warning(msg)
        if p.specs:
            feedback.info("To install: " + " ".join(p.specs))
        result = install(p.specs, target, feedback, index_args=p.index_args, constraints=p.constraints, dry_run=dry_run)

        command = "\n".join(result.commands)
        if dry_run:
            feedback.info("Dry run: nothing was installed.")
            if result.packages:
                feedback.info("Would install: " + " ".join(result.packages))
        if result.restart_required:
            feedback.warning(
                "Restart QGIS to use the new version of: "
                + ", ".join(result.restart_required)
                + " (already imported in this session)."
            )
        elif result.packages and not dry_run:
            feedback.info("The new packages can be used now; no restart is needed.")
        if p.unfixable:
            feedback.warning(f"{len(p.unfixable)} package(s) must be upgraded in QGIS's own Python (see above).")
        return {
            self.TARGET_FOLDER: str(target),
            self.PACKAGES: " ".join(result.packages),
            self.PIP_COMMAND: command,
            self.RESTART_REQUIRED: bool(result.restart_required),
        }
