"""algorithms.base: the shared algorithm class names missing dependencies and turns core errors into Processing errors."""

from __future__ import annotations

import pytest


def test_missing_dependency_named_with_pip_command(qgis_app):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    from deeplandcover.algorithms.base import DlcAlgorithm
    from deeplandcover.core import deps

    class NeedsGhost(DlcAlgorithm):
        ALG_NAME, ALG_DISPLAY = "ghost", "Ghost"
        REQUIREMENTS = (deps.Requirement("ghostpkg", ("ghostpkg",), "1.2"), deps.NUMPY)

        def initAlgorithm(self, config=None):
            pass

    alg = NeedsGhost()
    ok, msg = alg.canExecute()
    assert not ok
    assert "ghostpkg is not installed" in msg and "ghostpkg>=1.2" in msg and "pip install" in msg
    assert "numpy is" not in msg and "numpy>=" not in msg  # numpy is met; the hint only pins it
    with pytest.raises(QgsProcessingException, match="ghostpkg>=1.2"):
        alg.processAlgorithm({}, QgsProcessingContext(), QgsProcessingFeedback())


def test_core_errors_become_processing_exceptions(qgis_app):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    from deeplandcover.algorithms.base import DlcAlgorithm
    from deeplandcover.core.errors import CRSMismatchError

    class Bad(DlcAlgorithm):
        ALG_NAME, ALG_DISPLAY = "bad", "Bad"
        REQUIREMENTS = ()

        def initAlgorithm(self, config=None):
            pass

        def run_core(self, parameters, context, feedback):
            raise CRSMismatchError("labels are in EPSG:4326, imagery in EPSG:32633; reproject the labels")

    with pytest.raises(QgsProcessingException, match="reproject the labels"):
        Bad().processAlgorithm({}, QgsProcessingContext(), QgsProcessingFeedback())
