"""What an export is asked to do: :class:`ExportOptions` and its :class:`CleaningOptions`.

Plain dataclasses, built by the Processing algorithm's ``plan()`` (or by hand in a script) and
executed by :func:`core.chips.export.export_training_tiles`. Sizes are in pixels of the input grid,
shares between 0 and 1.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..classes import IGNORE_INDEX, ClassInfo
from ..errors import InputError
from ..preprocessing import timeseries as ts


@dataclass
class CleaningOptions:
    """Which cleaning steps an export runs (all off by default).

    Attributes:
        additional_sensors: rasters of other sensors on the grid of a single input raster; their bands
            are appended to the chip, named ``<file stem>_<band>``. A pixel is valid only where every
            sensor has data.
        water_mask_class: class value (0..254) of water; labels whose NDWI contradicts it, or whose
            water state flips between dates, become 255. Needs green and NIR bands (found by name).
        ndwi_threshold: NDWI above which a pixel is water (unitless, -1..1; McFeeters: 0).
        ndwi_margin: how far above ``ndwi_threshold`` the NDWI of a non-water label must be to count
            as a contradiction (unitless).
        valid_masks: raster with one band per date (or dates in its band descriptions).
        mask_kind: ``valid`` (1 = valid), ``cloud`` (1 = cloud) or ``probability`` (cloudy where
            ``>= cloud_threshold``).
        cloud_threshold: cloud probability at or above which a pixel is cloudy (units of the mask raster).
        cloud_policy: ``none``, ``drop`` or ``interpolate`` (time series only; a single image under
            ``drop`` skips chips below the coverage threshold).
        min_valid_coverage: share 0..1 of valid pixels a date needs in a chip to be kept (Yi et al.: 0.99).
    """

    additional_sensors: list[str | Path] | None = None
    water_mask_class: int | None = None
    ndwi_threshold: float = 0.0
    ndwi_margin: float = 0.2
    valid_masks: str | Path | None = None
    mask_kind: ts.MaskKind = "valid"
    cloud_threshold: float = 0.5
    cloud_policy: ts.Policy = "none"
    min_valid_coverage: float = 0.0

    @property
    def enabled(self) -> bool:
        """True when any step is requested."""
        return bool(
            self.additional_sensors
            or self.water_mask_class is not None
            or self.valid_masks
            or self.cloud_policy != "none"
        )

    def check(self, kind: str) -> None:
        """Raise when an option is out of range or does not fit a chip ``kind``.

        Raises:
            InputError: unknown policy, coverage outside 0..1, interpolation without a series, any step
                on a change pair, a water class outside 0..254.
        """
        if self.cloud_policy not in ts.POLICIES:
            raise InputError(f"Unknown CLOUD_POLICY {self.cloud_policy!r}; use one of {', '.join(ts.POLICIES)}.")
        if not 0.0 <= self.min_valid_coverage <= 1.0:
            raise InputError(f"MIN_VALID_COVERAGE is a share between 0 and 1, got {self.min_valid_coverage}.")
        if self.cloud_policy == "interpolate" and kind != "sequence":
            raise InputError(
                "CLOUD_POLICY interpolate fills gaps in time and needs a time series (several INPUT rasters)."
            )
        if not self.enabled:
            return
        if kind == "pair":
            raise InputError(
                "Sensor fusion, water masking and cloud masks work on single images and time series, "
                "not on change pairs (ADDITIONAL_INPUT)."
            )
        if self.water_mask_class is not None and not 0 <= int(self.water_mask_class) < IGNORE_INDEX:
            raise InputError(f"WATER_MASK_CLASS must be a class value 0..254, got {self.water_mask_class}.")


@dataclass
class ExportOptions:
    """Everything one export needs: inputs, output folder, tiling, label rules and cleaning steps.

    Attributes:
        images: one raster (single date) or T rasters of one grid (a time series, oldest first; dates
            from ``dates`` or parsed from the file names).
        labels: vector file with a class field, or a classified raster (any CRS/grid: reprojected
            onto the image grid with nearest neighbour).
        out_dir: output folder; must be empty or not exist.
        class_field: class attribute of vector labels (integer, or text named in ``class_table``).
        layer: layer of a multi-layer vector file.
        images2: second-date raster on the same grid (change pairs, written to ``images2/``).
        class_table: CSV (value,name[,color | red,green,blue]) or ClassInfo list; entries named
            "unlabelled"/"no data" become IGNORE_INDEX. Without it classes are the distinct values.
        tile_size: chip edge in pixels.
        stride: step between chips in pixels; ``stride < tile_size`` overlaps chips.
        aoi: polygon file; only chips fully inside are written.
        min_labelled_fraction: least share (0..1) of labelled pixels a chip needs.
        export_empty: write chips below ``min_labelled_fraction`` too (ArcGIS "output no feature tiles").
        line_buffer_px: dilation radius in pixels of line labels (:mod:`core.chips.labels`).
        edge_erosion_px: erosion radius in pixels of class edges, set to 255 (:mod:`core.chips.labels`).
        bands: 1-based band subset (same for every date); None = all bands.
        dates: ISO dates of a series, one per raster.
        block_size: spatial block edge in pixels for ``ChipRecord.block``; None =
            :func:`core.chips.export.default_block_size`.
        holdout: polygon file; chips intersecting it get ``block="holdout"`` (validation only).
        cleaning: sensor fusion, water-label masking, valid masks and cloud policy
            (:class:`CleaningOptions`, applied by :mod:`core.chips.cleaning`).
    """

    images: list[str | Path]
    labels: str | Path
    out_dir: str | Path
    class_field: str | None = None
    layer: str | None = None
    images2: str | Path | None = None
    class_table: str | Path | Sequence[ClassInfo] | None = None
    tile_size: int = 256
    stride: int = 128
    aoi: str | Path | None = None
    min_labelled_fraction: float = 0.05
    export_empty: bool = False
    line_buffer_px: int = 0
    edge_erosion_px: int = 0
    bands: list[int] | None = None
    dates: list[str] | None = None
    block_size: int | None = None
    holdout: str | Path | None = None
    cleaning: CleaningOptions = field(default_factory=CleaningOptions)

    def manifest_entries(self) -> dict[str, Any]:
        """The label and selection options recorded in ``manifest.sources`` (JSON-ready)."""
        table = self.class_table
        return {
            "labels": str(Path(self.labels)),
            "class_field": self.class_field,
            "layer": self.layer,
            "class_table": str(table) if isinstance(table, (str, os.PathLike)) else None,
            "aoi": str(self.aoi) if self.aoi else None,
            "holdout": str(self.holdout) if self.holdout else None,
            "min_labelled_fraction": self.min_labelled_fraction,
            "export_empty": self.export_empty,
            "line_buffer_px": self.line_buffer_px,
            "edge_erosion_px": self.edge_erosion_px,
        }
