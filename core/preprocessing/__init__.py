"""Normalisation, dihedral transforms, spectral indices and time-series cleaning."""

from ..lazy import lazy_exports

#: the stage's entry point and options, imported on first use (:mod:`core.lazy`)
_EXPORTS = {
    "normalize": ".normalize",
    "valid_mask": ".normalize",
    "dihedral": ".dihedral",
    "parse_indices": ".indices",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
