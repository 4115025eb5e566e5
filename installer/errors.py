"""The error of the installer: everything that keeps the packages from being installed."""

from __future__ import annotations

from ..core.errors import DeepLandCoverError


class InstallError(DeepLandCoverError, RuntimeError):
    """Installing Python packages failed: no interpreter or pip, pip's error, an unusable folder."""
