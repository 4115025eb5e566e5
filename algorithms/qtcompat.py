"""The Processing enum values whose home differs between QGIS 3.22 and QGIS 3.36+ / 4 (Qt 6), in one place.

QGIS 3.36 moved the Processing enums into the ``Qgis`` namespace, some with new member names:

* ``QgsProcessingParameterNumber.Type.Integer`` -> ``Qgis.ProcessingNumberParameterType.Integer`` (``Double`` alike)
* ``QgsProcessingParameterFile.Behavior.Folder`` -> ``Qgis.ProcessingFileParameterBehavior.Folder`` (``File`` alike)
* ``QgsProcessing.SourceType.TypeRaster`` -> ``Qgis.ProcessingSourceType.Raster`` (``TypeVectorPolygon`` ->
  ``VectorPolygon``, ``TypeVectorAnyGeometry`` -> ``VectorAnyGeometry``)
* ``QgsProcessingParameterDefinition.Flag.FlagAdvanced`` -> ``Qgis.ProcessingParameterFlag.Advanced``

QGIS 3.22 (the minimum) has only the names on the left; QGIS 3.36+ and 4.x keep them only as monkey-patched
aliases of the ones on the right (``is_monkey_patched = True`` in the generated ``qgis/core/auto_additions/qgis.py``).
Each constant takes the new home when this QGIS has it, at import time, and the old scoped enum otherwise,
so the algorithms never spell a version-dependent name. Enums that did not move are written in the scoped form
valid on every supported version (``Qgis.MessageLevel.Critical``, ``QgsVectorFileWriter.WriterError.NoError``);
``tests/test_qt6_ready.py`` checks both.
"""

from __future__ import annotations

from qgis.core import (
    Qgis,
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
)

#: True on QGIS >= 3.36 (and 4.x), where the Processing enums live in ``Qgis``.
PROCESSING_ENUMS_IN_QGIS = hasattr(Qgis, "ProcessingSourceType")

if PROCESSING_ENUMS_IN_QGIS:
    NUMBER_INTEGER = Qgis.ProcessingNumberParameterType.Integer
    NUMBER_DOUBLE = Qgis.ProcessingNumberParameterType.Double
    FILE_BEHAVIOR_FILE = Qgis.ProcessingFileParameterBehavior.File
    FILE_BEHAVIOR_FOLDER = Qgis.ProcessingFileParameterBehavior.Folder
    SOURCE_RASTER = Qgis.ProcessingSourceType.Raster
    SOURCE_VECTOR_POLYGON = Qgis.ProcessingSourceType.VectorPolygon
    SOURCE_VECTOR_ANY_GEOMETRY = Qgis.ProcessingSourceType.VectorAnyGeometry
    PARAMETER_FLAG_ADVANCED = Qgis.ProcessingParameterFlag.Advanced
else:  # QGIS 3.22 - 3.34
    NUMBER_INTEGER = QgsProcessingParameterNumber.Type.Integer
    NUMBER_DOUBLE = QgsProcessingParameterNumber.Type.Double
    FILE_BEHAVIOR_FILE = QgsProcessingParameterFile.Behavior.File
    FILE_BEHAVIOR_FOLDER = QgsProcessingParameterFile.Behavior.Folder
    SOURCE_RASTER = QgsProcessing.SourceType.TypeRaster
    SOURCE_VECTOR_POLYGON = QgsProcessing.SourceType.TypeVectorPolygon
    SOURCE_VECTOR_ANY_GEOMETRY = QgsProcessing.SourceType.TypeVectorAnyGeometry
    PARAMETER_FLAG_ADVANCED = QgsProcessingParameterDefinition.Flag.FlagAdvanced
