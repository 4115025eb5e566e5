"""A two-date change model run through the Classify Pixels engine (Detect Change, method 1).

Counterpart of ArcGIS "Detect Change Using Deep Learning". The model card's task is ``"change"``: its
input is the bands of date 1 followed by the same bands of date 2 (2C channels), trained on two-date
chips as in Esri, "Multi-class change detection using image segmentation deep learning models" (ArcGIS
API for Python sample notebook), whose labels are "to class" or "no change".
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
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
    """Run a two-date change model through :func:`core.inference.engine.classify_raster`.

    The model card's task must be ``"change"`` (input = date 1 bands then date 2 bands, 2C
    channels); its classes are e.g. ``"no change"`` / ``"change"`` or ``"to forest"`` ...
    ``"no change"``. Both dates must be on one grid (same as Classify Pixels with several inputs).

    Returns:
        The :class:`core.inference.options.InferenceResult`.

    Raises:
        InputError: the model expects a single date (its task is not ``"change"``).
        BandMismatchError: the two dates have different band counts.
        ModelFileError, GridMismatchError: as :func:`core.inference.engine.classify_raster`.
    """
    from ..inference.engine import classify_raster
    from ..modelcard import read_card
    from ..stac import is_item, model_from_item

    o = options
    if is_item(o.model):  # a STAC Item with the MLM extension: its mlm:model asset
        o = dataclasses.replace(o, model=model_from_item(o.model))
    card = read_card(o.model)
    if card.task != "change":
        raise InputError(
            f"The model {Path(o.model).name} expects a single date (task '{card.task}'), not a pair of "
            "rasters. Use a change model trained on two-date chips, or classify each date with Classify "
            "Pixels and use the post-classification mode."
        )
    pair_band_count(o.before, o.after)
    return classify_raster(
        [o.before, o.after],
        o.model,
        o.output,
        o.classify,
        prob_path=o.prob_path,
        area_table_path=o.table_path,
        polygons_path=o.polygons_path,
        feedback=feedback,
    )
