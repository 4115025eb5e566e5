"""The QGIS plugin object: registers the Deep Land Cover Processing provider."""

from __future__ import annotations

from qgis.core import QgsApplication


class DeepLandCoverPlugin:
    """Adds the Processing provider; has no menus or toolbars of its own (everything is in the Toolbox)."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider = None

    def initProcessing(self) -> None:  # noqa: N802 (QGIS API name)
        """Called by QGIS and qgis_process: register the provider once."""
        from .provider.provider import DeepLandCoverProvider

        if self.provider is None:
            self.provider = DeepLandCoverProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802
        """Desktop QGIS start-up."""
        self.initProcessing()

    def unload(self) -> None:
        """Plugin disabled or QGIS closing."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
