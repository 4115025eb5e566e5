"""A two-date change model run through the Classify Pixels engine (Detect Change, method 1).

Counterpart of ArcGIS "Detect Change Using Deep Learning". The model card's task is ``"change"``: its
input is the bands of date 1 followed by the same bands of date 2 (2C channels), trained on two-date
chips as in Esri, "Multi-class change detection using image segmentation deep learning models" (ArcGIS
API for Python sample notebook), whose labels are "to class" or "no change".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import InputError
from ..feedback import Feedback
from ..inference.options import ClassifyOptions
from .cva import pair_band_count

if TYPE_CHECKING:
    from ..inference.options import InferenceResult


@dataclass(frozen=True)
class ChangeModelOptions:
    """What :func:`detect_change_with_model` runs.

    Attributes:
        before, after: rasters of the two dates (same bands, one grid). model: ``.onnx`` change model.
        output: class raster. prob_path: optional probabilities. table_path: optional area CSV.
        polygons_path: optional GeoPackage of the class polygons (made as ``classify.polygons`` says).
        classify: how the engine classifies (tile size, overlap, batch size, device...), as in
            Classify Pixels.
    """

    before: str | os.PathLike
    after: str | os.PathLike
    model: str | os.PathLike
    output: str | os.PathLike
    prob_path: str | os.PathLike | None = None
    table_path: str | os.PathLike | None = None
    polygons_path: str | os.PathLike | None = None
    classify: ClassifyOptions = field(default_factory=ClassifyOptions)


def detect_change_with_model(options: ChangeModelOptions, feedback: Feedback | None = None) -> InferenceResult:
    """Run a two-date change model through :func:`core.inference.engine.classify_pixels`.

    The model card's task must be ``"change"`` (input = date 1 bands then date 2 bands, 2C
    channels); its classes are e.g. ``"no change"`` / ``"change"`` or ``"to forest"`` ...
    ``"no change"``. Both dates must be on one grid (same as Classify Pixels with several inputs).
    The model may be an ``.onnx`` file, a STAC Item or a catalogue name (:func:`core.inference.model.load_model`).

    Returns:
        The :class:`core.inference.options.InferenceResult`.

    Raises:
        InputError: the model expects a single date (its task is not ``"change"``).
        BandMismatchError: the two dates have different band counts.
        ModelFileError, GridMismatchError: as :func:`core.inference.engine.classify_pixels`.
    """
    from ..inference.engine import classify_pixels
    from ..inference.model import load_model
    from ..inference.options import OutputPaths

    o, c = options, options.classify
    model = load_model(o.model, c.device, c.threads, c.input_scale, feedback=feedback)
    if model.card.task != "change":
        raise InputError(
            f"The model {model.path.name} expects a single date (task '{model.card.task}'), not a pair of "
            "rasters. Use a change model trained on two-date chips, or classify each date with Classify "
            "Pixels and use the post-classification mode."
        )
    pair_band_count(o.before, o.after)
    outputs = OutputPaths(o.output, o.prob_path, o.table_path, o.polygons_path)
    return classify_pixels([o.before, o.after], model, outputs, c, feedback=feedback)
