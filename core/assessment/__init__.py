"""Compute Accuracy and Create Accuracy Points: metrics and area estimates (pure NumPy, also used by
training), reference reading, comparison, sampling, reports.

Imports no torch."""

from ..lazy import lazy_exports

#: the stage's entry point and options, imported on first use (:mod:`core.lazy`)
_EXPORTS = {
    "compute_accuracy": ".compare",
    "AccuracyOptions": ".compare",
    "AccuracyReport": ".metrics",
    "create_accuracy_points": ".sampling",
    "AccuracyPointsOptions": ".sampling",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
