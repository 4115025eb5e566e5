"""Detect Change: from-to change (with its transition codes), change vector analysis and change models.

Imports no torch."""

from ..lazy import lazy_exports

#: the stage's entry point and options, imported on first use (:mod:`core.lazy`)
_EXPORTS = {
    "from_to_change": ".from_to",
    "FromToOptions": ".from_to",
    "change_vector_analysis": ".cva",
    "CvaOptions": ".cva",
    "detect_change_with_model": ".model",
    "ChangeModelOptions": ".model",
    "ChangeResult": ".result",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
