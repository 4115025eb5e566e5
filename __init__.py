"""Deep Land Cover QGIS plugin (package ``deeplandcover``).

Importing this package imports nothing from QGIS, torch or onnxruntime, so ``deeplandcover.core``
can be used without QGIS.
"""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """QGIS entry point: return the plugin object (``iface`` is None under qgis_process)."""
    from .plugin import DeepLandCoverPlugin

    return DeepLandCoverPlugin(iface)
