"""Ready-made models by name: Classify Pixels' MODEL may be a catalogue name instead of an ``.onnx`` file.

:data:`CATALOG_MODELS` lists the names. ``dynamicworld`` is Dynamic World's land-cover network (Brown, C.
F., et al. (2022). Dynamic World, Near real-time global 10 m land use land cover mapping. Scientific Data,
9, 251. https://doi.org/10.1038/s41597-022-01307-4; Apache-2.0): 9 Sentinel-2 L1C bands in, 9 classes out,
no training. Its ONNX file is made once per user from the authors' published checkpoint (read from the
weights folder, ``$DLC_WEIGHTS_DIR``, or downloaded into it with SHA-256 checks) by our PyTorch
implementation (:mod:`models.dynamicworld`, :mod:`core.training.dynamicworld`), then kept in
:func:`models_dir` and reused. Making it needs the training packages (torch, onnx) once; running it needs
onnxruntime only. Never imports torch: the build is imported only when the file has to be made.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..cache import user_cache_dir
from ..deps import ONNX, ONNXRUNTIME, TORCH, check
from ..errors import ModelFileError
from ..feedback import Feedback, ensure_feedback

#: Catalogue name -> what it is (for the dialog's choice and the messages).
CATALOG_MODELS: dict[str, str] = {
    "dynamicworld": "Dynamic World land cover (Brown et al. 2022): Sentinel-2 L1C, 9 bands, 9 classes, 10 m",
}
#: Version of the way the Dynamic World ONNX file is made; a cached file of another version is made again.
DYNAMICWORLD_BUILD = 1


def models_dir() -> Path:
    """Where ready-made models are kept: ``$DLC_MODELS_DIR``, else the user cache + ``deeplandcover/models``.

    Not the weights folder (``$DLC_WEIGHTS_DIR``), which may be a read-only shared copy.
    """
    return user_cache_dir("models", "DLC_MODELS_DIR")


def is_catalog_model(model: str | os.PathLike) -> bool:
    """True when ``model`` names a catalogue model (case-insensitive) and no file of that name exists."""
    name = str(model).strip().lower()
    return name in CATALOG_MODELS and not Path(model).exists()


def _current(path: Path) -> bool:
    """True when ``path`` is a Dynamic World model made by this version of the build."""
    from ..modelcard import read_card

    try:
        card = read_card(path)
    except ModelFileError:
        return False
    return card.architecture == "dynamicworld" and card.training.get("build") == DYNAMICWORLD_BUILD


def dynamicworld_onnx(cache: str | os.PathLike | None = None, feedback: Feedback | None = None) -> Path:
    """The Dynamic World ONNX model with its card, made on first use and kept in ``cache``.

    Args:
        cache: folder of ready-made models (default :func:`models_dir`); the file is ``dynamicworld.onnx``.
        feedback: progress, cancel and log of the download and build.

    Returns:
        The path of the ``.onnx`` file: output ``(B, 9, H, W)`` class probabilities of Sentinel-2 L1C tiles,
        its card naming the bands, Dynamic World's normalisation, the classes and colours, the licence.

    Raises:
        DependencyError: the file has to be made and torch or onnx is missing (the message names the
            installer algorithm and the commands).
        ModelFileError: the checkpoint cannot be had (offline: the message says where to put it), is
            damaged, or the export fails.
    """
    path = Path(cache or models_dir()) / "dynamicworld.onnx"
    if path.is_file() and _current(path):
        return path
    check((TORCH, ONNX, ONNXRUNTIME), "Making the Dynamic World model (once, from the authors' weights)")
    fb = ensure_feedback(feedback)
    fb.info(f"Making the Dynamic World ONNX model from the authors' weights into {path} (once).")
    from ..training.dynamicworld import build_onnx

    return build_onnx(path, DYNAMICWORLD_BUILD, fb)


def resolve_model(
    model: str | os.PathLike, feedback: Feedback | None = None, cache: str | os.PathLike | None = None
) -> str | os.PathLike:
    """``model`` as a file: a catalogue name becomes its ONNX file (see :func:`dynamicworld_onnx`); else unchanged."""
    if not is_catalog_model(model):
        return model
    return dynamicworld_onnx(cache, feedback)
