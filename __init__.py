"""Deep Land Cover QGIS plugin (package ``deeplandcover``).

Importing this package imports nothing from QGIS, torch or onnxruntime, so ``deeplandcover.core``
can be used without QGIS.
"""


def _add_plugin_packages() -> None:
    """Append the folder that *Install Python dependencies* fills to ``sys.path`` (after QGIS's own
    site-packages, so QGIS's NumPy/GDAL win). Cheap (one ``isdir``), and never stops the plugin loading."""
    try:
        from .installer.folder import activate

        activate()
    except Exception:  # noqa: BLE001 - a broken folder must not keep the plugin from loading
        pass


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """QGIS entry point: return the plugin object (``iface`` is None under qgis_process).

    Desktop QGIS and qgis_process both call it before loading the provider, so the packages installed
    by *Install Python dependencies* are importable when the algorithms check their requirements.
    """
    _add_plugin_packages()
    from .plugin import DeepLandCoverPlugin

    return DeepLandCoverPlugin(iface)
