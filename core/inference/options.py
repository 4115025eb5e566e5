"""What Classify Pixels takes and gives: :class:`ClassifyOptions` (how to classify), :class:`OutputPaths`
(where to write) and :class:`InferenceResult`.

:func:`core.inference.engine.classify_pixels` takes the input rasters, the model and the output paths as
arguments and everything else as one :class:`ClassifyOptions`; the batch runner
(:mod:`core.inference.batch`) sends the same object to every task.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..classes import ClassInfo
from ..raster.polygons import PolygonOptions
from .blending import Blending

#: A GeoJSON-like geometry mapping (``{"type": "Polygon", "coordinates": ...}``).
GeoJSON = Mapping[str, Any]


@dataclass(frozen=True)
class ClassifyOptions:
    """How :func:`core.inference.engine.classify_pixels` classifies: everything but the input, model and
    output paths.

    Attributes:
        extent: ``(left, bottom, right, top)`` in the CRS units of the first input; None: the whole raster.
        mask: polygons (a vector file, or GeoJSON-like geometries in the raster CRS); pixels outside
            become nodata. None: no mask.
        tile_size: tile edge in pixels (None/0: the card's; models with a fixed input size use theirs).
        overlap: pixels shared by neighbouring tiles (None/negative: the card's, scaled to ``tile_size``);
            ``< tile_size``.
        batch_size: tiles per ``session.run``, at least 1 (models with a fixed batch of 1 run one at a time).
        blending: ``"gaussian"`` smooth weights or ``"center"`` crop (see :func:`core.inference.blending.blend_weights`).
        tta: average the 8 dihedral transforms (:mod:`core.preprocessing.dihedral`; 8x slower).
        device: ``auto``/``cpu``/``cuda``/``cuda:N``/``tensorrt`` (see :func:`core.inference.session.resolve_providers`).
        threads: ONNX Runtime intra-op threads, 0 = all cores.
        band_map: 1-based raster band per model band (per date), overriding name matching.
        valid_masks: for a time-series model trained with a cloud policy (Export Training Tiles
            ``CLOUD_POLICY``, recorded in the card's ``training["preprocessing"]["cloud"]``): a raster
            with one band per input date (or dates in its band descriptions) marking valid pixels;
            the same policy (drop / linear temporal interpolation,
            :func:`core.preprocessing.timeseries.apply_policy`) is applied to every tile before
            normalisation, so the model sees what it saw in training.
        mask_kind: how ``valid_masks`` is read (:class:`core.preprocessing.timeseries.DateMasks`):
            ``valid`` (non-zero = valid), ``cloud`` (non-zero = cloud) or ``probability``.
        cloud_threshold: with ``mask_kind="probability"``, the value (mask raster units) at or above which
            a pixel is cloudy.
        resample: read the inputs resampled to the model's pixel size (the card's ``pixel_size``, see
            :func:`core.inference.pixel_size.model_grid`; average when coarsening, bilinear when refining) and write the outputs
            on that grid. Without it, a pixel size more than 25 % off the model's is only warned about.
        input_scale: multiply raw raster values by this before the model's normalisation, replacing the
            card's ``input_scale`` (None/0: the card's; 1 for our models, 1/255 for Deepness models).
        cog: write the class (and probability) raster as a Cloud-Optimised GeoTIFF (GDAL's COG driver:
            DEFLATE, 512 px tiles, overviews), see :func:`core.raster.io.atomic_raster`.
        polygons: how the optional class polygons are made (minimum mapping unit, simplification).
    """

    extent: tuple[float, float, float, float] | None = None
    mask: str | os.PathLike | Sequence[GeoJSON] | None = None
    tile_size: int | None = None
    overlap: int | None = None
    batch_size: int = 4
    blending: Blending = "gaussian"
    tta: bool = False
    device: str = "auto"
    threads: int = 0
    band_map: Sequence[int] | None = None
    valid_masks: str | os.PathLike | None = None
    mask_kind: str = "valid"
    cloud_threshold: float = 0.5
    resample: bool = False
    input_scale: float | None = None
    cog: bool = False
    polygons: PolygonOptions = field(default_factory=PolygonOptions)


@dataclass(frozen=True)
class OutputPaths:
    """Where Classify Pixels writes: the class raster, and optionally probabilities, an area table, polygons.

    Paths may be given as strings; they are kept as :class:`pathlib.Path`.

    Attributes:
        classes: class raster (GeoTIFF, uint8 class values, nodata 255, colour table; QML beside it).
        probabilities: float32 probability raster, one band per class (nodata NaN), or None.
        area_table: CSV of per-class pixels, m2, ha and percent, or None.
        polygons: GeoPackage of class polygons (value, name, pixels, m², ha), made from the class raster
            strip by strip (:func:`core.raster.polygons.polygonize_classes`, ``ClassifyOptions.polygons``), or None.
    """

    classes: Path
    probabilities: Path | None = None
    area_table: Path | None = None
    polygons: Path | None = None

    def __post_init__(self) -> None:
        for f in fields(self):  # frozen: normalised once, here
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, Path(value) if value else None)


@dataclass
class InferenceResult:
    """What :func:`core.inference.engine.classify_pixels` produced.

    Attributes:
        output: the class raster (uint8, class values, nodata 255).
        qml: the QGIS style written next to it.
        probabilities: float32 probability raster (one band per class) or None.
        area_table: per-class area CSV or None.
        classes: the output classes (value, name, colour), in model channel order.
        pixel_counts: classified pixels per class value.
        nodata_pixels: pixels of the extent set to nodata (input nodata, outside the mask).
        provider: the ONNX Runtime execution provider that ran (``"CPUExecutionProvider"``...).
        seconds: wall-clock time of the tiled run (reading, inference, writing).
        megapixels_per_s: extent pixels / ``seconds`` / 1e6.
        tiles: tiles in the grid; ``tiles_run``: tiles that held valid pixels and went through the model.
        tile_size, overlap, batch_size: the values actually used (pixels, pixels, tiles).
        buffer_bytes: size of the blending buffers (working tile buffer + carried overlap rows), bytes.
        warnings: the warnings logged (GPU missing, several outputs, pixel size mismatch...).
        polygons: the class polygon GeoPackage or None. provenance: the metadata items written into the outputs.
    """

    output: Path
    qml: Path
    probabilities: Path | None
    area_table: Path | None
    classes: list[ClassInfo]
    pixel_counts: dict[int, int]
    nodata_pixels: int
    provider: str
    seconds: float
    megapixels_per_s: float
    tiles: int
    tiles_run: int
    tile_size: int
    overlap: int
    batch_size: int
    buffer_bytes: int
    warnings: list[str] = field(default_factory=list)
    polygons: Path | None = None
    provenance: dict[str, str] = field(default_factory=dict)
