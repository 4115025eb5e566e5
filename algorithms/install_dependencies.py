"""Processing algorithm ``deeplandcover:installdependencies`` (Install Python dependencies).

Thin wrapper over :mod:`installer` (:func:`~installer.plan.plan`, then
:func:`~installer.install.install`): finds what the chosen algorithms miss and installs it with
pip into the plugin's own package folder, with everything QGIS's Python provides pinned. After an
install the provider's algorithms are reloaded (:func:`provider.provider.reload_provider`, from
:meth:`InstallDependenciesAlgorithm.postProcessAlgorithm`, which QGIS runs in the main thread), so the
new packages are used in the same session.
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
from ..installer.folder import packages_dir
from ..installer.gpu import GPU_CHOICES, TORCH_CPU_INDEX
from ..installer.install import InstallOptions, InstallResult, install
from ..installer.plan import WHAT_CHOICES, Plan, plan, requirements_for
from .base import DlcAlgorithm, QgsFeedbackAdapter
from .qtcompat import PARAMETER_FLAG_ADVANCED

WHAT_LABELS = [  # short: the dropdown must fit the dialog (details in the help)
    "Inference (no training)",
    "Inference + training (torch)",
    "Everything (+ Dask batch)",
]
GPU_LABELS = [  # the core's messages call them "GPU: Auto", "GPU: CPU only", "GPU: NVIDIA GPU"
    "Auto (GPU builds if NVIDIA)",
    "CPU only",
    "NVIDIA GPU (CUDA builds)",
]

HELP = f"""Installs the Python packages that the Deep Land Cover algorithms need (numpy, rasterio, onnxruntime,
geopandas, ...; torch and onnx for training; dask for the batch algorithm) with pip, into a folder of
the plugin's own: no terminal, OSGeo4W Shell or administrator rights are needed. Debian's and Ubuntu's
QGIS come without pip: there Linux needs this one package first, <code>sudo apt install python3-pip</code>.
<p><b>What to install</b>: the packages of the inference algorithms, of inference and training, or of
everything. Only what is missing or too old is installed; packages that QGIS's Python already provides
are never installed again or replaced (QGIS's NumPy, GDAL and PyQt always stay), and pip is told to
resolve against exactly those versions.</p>
<p><b>GPU</b>: <i>Auto</i> installs the GPU builds when an NVIDIA GPU is found (<code>nvidia-smi</code>):
<code>onnxruntime-gpu</code>, and on Linux PyPI's torch with CUDA (about 3 GB). Otherwise torch is the CPU
build, on Linux from PyTorch's CPU index ({TORCH_CPU_INDEX}). If that index does not answer, or pip would
still pick a CUDA build, the install stops before downloading anything and says why.</p>
<p><b>Torch package index</b> (Advanced): where torch comes from, e.g. a mirror of the CPU index, or one
of PyTorch's CUDA indexes for GPU training on Windows; <code>pypi</code>: PyPI only. Empty: the
environment variable <code>DLC_TORCH_INDEX_URL</code> when it is set, else the CPU index as above.</p>
<p><b>Dry run</b>: only list what would be installed (pip resolves the versions, nothing is written) and
the pip commands, which can be run again by hand.</p>
<p>The folder is per user and per Python version (<code>DLC_PYTHON_PACKAGES</code> changes it); it is
added to Python's search path after QGIS's own packages when the plugin loads, and right after the
install, when the algorithms are reloaded: no restart is needed, unless a package that was already
imported in this QGIS session (for example by another plugin) was replaced; the log then says so.
Installing torch downloads several hundred megabytes. An install that fails or is canceled leaves the
folder as it was.</p>"""


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
    TORCH_INDEX_URL = "TORCH_INDEX_URL"
    TARGET_FOLDER = "TARGET_FOLDER"
    PACKAGES = "PACKAGES"
    PIP_COMMAND = "PIP_COMMAND"
    RESTART_REQUIRED = "RESTART_REQUIRED"

    _reload = False  # set by run_core when packages were installed: postProcessAlgorithm reloads the provider

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
        self.addParameter(QgsProcessingParameterBoolean(self.DRY_RUN, self.tr("Dry run (only list)"), False))
        for key, label in (
            (self.EXTRA_PACKAGES, "Additional packages (pip)"),
            (self.TORCH_INDEX_URL, "Torch package index (URL)"),
        ):
            param = QgsProcessingParameterString(key, self.tr(label), "", optional=True)
            param.setFlags(param.flags() | PARAMETER_FLAG_ADVANCED)
            self.addParameter(param)
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
        index = self.parameterAsString(parameters, self.TORCH_INDEX_URL, context).strip()

        batch = ()
        if what == "all":  # whatever Classify Pixels (Batch) checks for (dask, distributed)
            from .classify_batch import ClassifyBatchAlgorithm

            batch = tuple(ClassifyBatchAlgorithm.REQUIREMENTS)
        target = packages_dir()
        p = plan(requirements_for(what, batch), gpu=gpu, extra_specs=extra, target=target, torch_index_setting=index)
        self._log_plan(p, feedback)
        how = InstallOptions(index_args=p.index_args, constraints=p.constraints, dry_run=dry_run, build=p.build)
        result = install(p.specs, target, feedback, how)
        self._log_result(result, feedback, len(p.unfixable))
        self._reload = bool(result.packages) and not dry_run
        return {
            self.TARGET_FOLDER: str(target),
            self.PACKAGES: " ".join(result.packages),
            self.PIP_COMMAND: "\n".join(result.commands),
            self.RESTART_REQUIRED: bool(result.restart_required),
        }

    @staticmethod
    def _log_plan(p: Plan, feedback: QgsFeedbackAdapter) -> None:
        """The choice (GPU, builds, torch's index), what is there already and what is missing."""
        line = f"{p.build.text()}; onnxruntime build: {'GPU (onnxruntime-gpu)' if p.gpu else 'CPU'}"
        feedback.info(line + (f"; {p.build.index_text()}" if p.index_args else ""))
        if p.satisfied:
            feedback.info("Already installed: " + ", ".join(p.satisfied))
        for msg in p.unfixable:
            feedback.warning(msg)
        if p.specs:
            feedback.info("To install: " + " ".join(p.specs))

    @staticmethod
    def _log_result(result: InstallResult, feedback: QgsFeedbackAdapter, unfixable: int) -> None:
        """The closing lines: dry run, or whether the new packages can be used in this session."""
        if result.dry_run:
            feedback.info("Dry run: nothing was installed.")
        elif result.restart_required:
            feedback.warning(
                "Restart QGIS to use the new version of: "
                + ", ".join(result.restart_required)
                + " (already imported in this session); the other new packages can be used now."
            )
        elif result.packages:
            feedback.info("The new packages can be used now: the algorithms are reloaded, no restart is needed.")
        if unfixable:
            feedback.warning(f"{unfixable} package(s) must be upgraded in QGIS's own Python (see above).")

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict:  # noqa: N802
        """In the main thread, after an install: reload the provider's algorithms (they see the new packages).

        Returns an empty map, so that QGIS keeps the results of :meth:`processAlgorithm`.
        """
        if self._reload:
            from ..provider.provider import reload_provider

            reload_provider()
        return {}
