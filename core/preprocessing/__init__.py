"""Normalisation, dihedral transforms, spectral indices and time-series cleaning."""

from ..lazy import lazy_exports

#: the stage's public functions, imported on first use (:mod:`core.lazy`). Not ``normalize`` nor ``dihedral``:
#: they are also submodule names, and importing the submodule would replace the function in the package
#: (``from deeplandcover.core.preprocessing.normalize import normalize``).
_EXPORTS = {
    "valid_mask": ".normalize",
    "parse_indices": ".indices",
    "compute_indices": ".indices",
    "apply_policy": ".timeseries",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
