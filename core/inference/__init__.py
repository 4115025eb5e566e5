"""Classify Pixels: the loaded model (:mod:`.model`), band matching, tiled reading, blending, writing, the engine.

The stage's entry point and options are re-exported lazily (:mod:`core.lazy`):
``from deeplandcover.core.inference import classify_pixels, ClassifyOptions, load_model``. Imports no torch.
"""

from ..lazy import lazy_exports

#: the stage's entry point, its options and the loaded-model type, imported on first use (:mod:`core.lazy`)
_EXPORTS = {
    "classify_pixels": ".engine",
    "ClassifyOptions": ".options",
    "OutputPaths": ".options",
    "InferenceResult": ".options",
    "InferenceModel": ".model",
    "load_model": ".model",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
