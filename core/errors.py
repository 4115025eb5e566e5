"""Exceptions of the core library.

One root, :class:`DeepLandCoverError`, and narrow subclasses that also inherit the built-in they
resemble, so ``except ValueError`` still catches a bad argument. Every message says what is wrong
*and* how to fix it; the Processing layer turns these into ``QgsProcessingException`` unchanged.
"""

from __future__ import annotations


class DeepLandCoverError(Exception):
    """Root of every error raised on purpose by deeplandcover."""


class InputError(DeepLandCoverError, ValueError):
    """A parameter or input dataset is unusable (wrong value, empty, inconsistent)."""


class CRSMismatchError(InputError):
    """Two datasets are in different coordinate reference systems and cannot be combined as given."""


class NoOverlapError(InputError):
    """Two datasets (raster/raster, raster/vector, raster/extent) do not overlap."""


class BandMismatchError(InputError):
    """The band count or band names of a raster do not match what a model or chip folder expects."""


class GridMismatchError(InputError):
    """Rasters that must share one pixel grid (size, geotransform, CRS) do not."""


class EmptyAreaError(InputError):
    """Nothing to process: every pixel of the requested area is nodata or outside the mask."""


class ModelFileError(DeepLandCoverError, OSError):
    """A model file is missing, unreadable, corrupt, or lacks the metadata needed to run it."""


class ChipFolderError(DeepLandCoverError, OSError):
    """A training-chip folder is missing, incomplete, or in a format that cannot be read."""


class DependencyError(DeepLandCoverError, ImportError):
    """A Python package the requested operation needs is missing or too old."""


class CanceledError(DeepLandCoverError):
    """The user canceled the operation (feedback.is_canceled() returned True)."""
