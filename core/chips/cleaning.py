"""The optional cleaning steps of an export: sensor fusion, water-label masking and the cloud policy.

Each step follows a published method:

* Sensor fusion (early fusion: the bands of other sensors stacked after the main bands), as
  DeepForest-1 in Cherif, E., Hell, M. & Brandmeier, M. (2022), "DeepForest: Novel Deep Learning
  Models for Land Use and Land Cover Classification Using Multi-Temporal and -Modal Sentinel Data
  of the Amazon Basin", Remote Sensing 14(19), 5000, https://doi.org/10.3390/rs14195000.
* Masking of inconsistent water shorelines by the NDWI (:func:`mask_inconsistent_water`), from
  Sefrin, O., Riese, F. M. & Keller, S. (2021), "Deep Learning for Land Cover Change Detection",
  Remote Sensing 13(1), 78, https://doi.org/10.3390/rs13010078.
* Per-date valid-data / cloud masks, the valid coverage of each date in a chip and the cloud
  policy (drop dates, interpolate in time; :mod:`core.preprocessing.timeseries`), from Yi, Z.-F.,
  Bollinger, D. & Peressutti, D. (2020), "Mapping land use and land cover changes faster and at
  scale with deep learning on the cloud", Development Seed / Sinergise (eo-learn).

:class:`CleaningOptions` says which steps run; :func:`make_preprocessing` checks them against the
inputs and returns the :class:`ChipPreprocessing` that the export applies to every window.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from ..classes import IGNORE_INDEX
from ..errors import InputError
from ..feedback import Feedback
from ..preprocessing import timeseries as ts
from ..preprocessing.indices import band_positions, normalized_difference
from ..preprocessing.normalize import valid_mask
from ..raster.grid import band_names
from .options import CleaningOptions
from .sources import ImageSources, SensorSource, open_sensors


def mask_inconsistent_water(
    labels: np.ndarray,
    ndwi: np.ndarray,
    valid: np.ndarray,
    water_value: int,
    threshold: float = 0.0,
    margin: float = 0.2,
) -> tuple[np.ndarray, int, int]:
    """Set labels whose water state the imagery contradicts to IGNORE_INDEX.

    Sefrin, Riese & Keller (2021, see module docstring) mask "inconsistent water shorelines" with the
    NDWI (McFeeters, green/NIR): a shoreline moves between acquisitions, so its labels are unreliable.
    Two rules, on labelled pixels only:

    * contradiction: labelled ``water_value`` but mean NDWI over the valid dates ``< threshold``, or
      labelled another class but mean NDWI ``> threshold + margin``;
    * flip (T >= 2): the pixel's water state (NDWI > ``threshold``) differs between its valid dates.

    Args:
        labels: ``(H, W)`` uint8 label chip (IGNORE_INDEX = unlabelled).
        ndwi: ``(T, H, W)`` float32 NDWI of each date (T = 1 for a single image).
        valid: ``(T, H, W)`` bool, observations to use (nodata/cloud excluded).
        water_value: the class value of water.
        threshold: NDWI above which a pixel is water (McFeeters: 0).
        margin: how far above ``threshold`` the NDWI of a non-water label must be to count as a
            contradiction (dark wet soil and shadows have slightly positive NDWI).

    Returns:
        ``(labels, contradicted, flipped)``: the masked copy (uint8) and the pixels masked by each
        rule (a pixel masked by both counts as contradicted).
    """
    lab = labels.copy()
    labelled = lab != IGNORE_INDEX
    n_obs = valid.sum(axis=0)
    seen = labelled & (n_obs > 0)
    mean = np.where(valid, ndwi, 0).sum(axis=0) / np.maximum(n_obs, 1)
    water = lab == water_value
    contra = seen & ((water & (mean < threshold)) | (~water & (mean > threshold + margin)))
    is_w = (ndwi > threshold) & valid
    not_w = (ndwi <= threshold) & valid
    flip = seen & is_w.any(axis=0) & not_w.any(axis=0) & ~contra
    lab[contra | flip] = IGNORE_INDEX
    return lab, int(contra.sum()), int(flip.sum())


@dataclass
class CleaningCounts:
    """What the cleaning steps changed over an export (pixels and chips)."""

    contradicted: int = 0
    flipped: int = 0
    filled: int = 0
    skipped_coverage: int = 0
    chip_coverage: dict[str, list[float]] = field(default_factory=dict)
    chip_dropped: dict[str, list[str]] = field(default_factory=dict)


class ChipPreprocessing:
    """The optional per-window steps of an export, in order (one instance per export, a context manager).

    1. :meth:`read`: append the bands of other sensors (early fusion); combine nodata with the
       per-date valid masks (:class:`core.preprocessing.timeseries.DateMasks`).
    2. :meth:`water`: NDWI-inconsistent water labels -> 255 (:func:`mask_inconsistent_water`).
    3. :meth:`apply_policy`: cloud policy per chip (drop dates / interpolate); invalid pixels written
       as the nodata value.

    Counts go to ``sources["preprocessing"]`` (:meth:`manifest_entries`) and the log (:meth:`log`).
    Build it with :func:`make_preprocessing`.

    Args:
        options: the requested steps.
        sensors: the fused sensor rasters (checked to lie on the grid).
        masks: the per-date valid masks, or None.
        water_bands: 1-based (green, NIR) bands of the input, or None without water masking.
        fill: the value invalid pixels are written as (the input nodata, or a default for the dtype).
        dates: ISO dates of a series (empty for a single image).
    """

    def __init__(
        self,
        options: CleaningOptions,
        sensors: list[SensorSource],
        masks: ts.DateMasks | None,
        water_bands: tuple[int, int] | None,
        fill: float | None,
        dates: list[str],
    ) -> None:
        self.options = options
        self.sensors = sensors
        self.masks = masks
        self.water_bands = water_bands
        self.fill = fill
        self.dates = dates
        self.times = ts.date_offsets(dates) if dates else np.zeros(1)
        self.counts = CleaningCounts()
        self._coverage: np.ndarray | None = None  # of the chip in progress, per date
        self._dropped: list[int] = []  # dates dropped from the chip in progress
        self._filled = 0  # pixels interpolated in the chip in progress
        self._stack = contextlib.ExitStack()
        self._sensor_ds: list = []

    def __enter__(self) -> ChipPreprocessing:
        self._sensor_ds = [self._stack.enter_context(rasterio.open(ss.path)) for ss in self.sensors]
        if self.masks is not None:
            self._stack.enter_context(self.masks)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def read(
        self, datas: list[np.ndarray], valids: list[np.ndarray], win: Window
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Fuse sensors and apply the masks: ``T x (C, h, w)`` data and ``T x (h, w)`` valid in and out."""
        if self._sensor_ds:
            parts, v = [datas[0]], valids[0].copy()
            for ds, ss in zip(self._sensor_ds, self.sensors):
                d = ds.read(ss.band_index, window=win)
                v &= valid_mask(d, ss.nodata)
                parts.append(d)
            dtype = np.result_type(*parts)
            datas, valids = [np.concatenate([p.astype(dtype, copy=False) for p in parts])], [v]
        if self.masks is not None:
            mask_valid = self.masks.read(win)
            valids = [v & mask_valid[t] for t, v in enumerate(valids)]
        return datas, valids

    def water(self, lab: np.ndarray, dss, win: Window, valids: list[np.ndarray]) -> np.ndarray:
        """Labels with NDWI-inconsistent water pixels set to 255 (unchanged without a water class)."""
        o = self.options
        if o.water_mask_class is None:
            return lab
        ndwi = []
        for ds, v in zip(dss, valids):
            green, nir = ds.read(list(self.water_bands), window=win)
            ndwi.append(normalized_difference(green, nir, v))
        lab, contradicted, flipped = mask_inconsistent_water(
            lab, np.stack(ndwi), np.stack(valids), int(o.water_mask_class), o.ndwi_threshold, o.ndwi_margin
        )
        self.counts.contradicted += contradicted
        self.counts.flipped += flipped
        return lab

    def apply_policy(
        self, datas: list[np.ndarray], valids: list[np.ndarray]
    ) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
        """The cloud policy on one chip; False = skip the chip (single image below the coverage threshold)."""
        policy, min_cov = self.options.cloud_policy, self.options.min_valid_coverage
        self._coverage, self._dropped, self._filled = None, [], 0
        if self.masks is None and not self.sensors and policy == "none":
            return datas, valids, True
        if len(datas) > 1:
            res = ts.apply_policy(np.stack(datas), np.stack(valids), self.times, policy, min_cov)
            self._coverage, self._dropped, self._filled = res.coverage, res.dropped, res.filled
            data = ts.to_dtype(res.data, datas[0].dtype) if policy == "interpolate" else res.data
            datas, valids = [np.array(d) for d in data], list(res.valid)
        else:
            self._coverage = ts.chip_coverage(valids[0][None])
            if policy != "none" and self._coverage[0] < min_cov:
                self.counts.skipped_coverage += 1
                return datas, valids, False
        if self.fill is not None:
            for d, v in zip(datas, valids):
                d[:, ~v] = self.fill
        return datas, valids, True

    def chip_done(self, cid: str) -> None:
        """Record the coverage / dropped dates of the chip just written."""
        if self._coverage is None:
            return
        self.counts.chip_coverage[cid] = [round(float(c), 4) for c in self._coverage]
        if self._dropped:
            self.counts.chip_dropped[cid] = [self.dates[i] if self.dates else str(i) for i in self._dropped]
        self.counts.filled += self._filled

    def manifest_entries(self, src: ImageSources) -> dict:
        """``preprocessing`` (and ``sensor_bands``) entries of ``manifest.sources``."""
        o, n = self.options, self.counts
        pre: dict = {}
        if o.water_mask_class is not None:
            pre["water_mask"] = {
                "class": int(o.water_mask_class),
                "ndwi_threshold": o.ndwi_threshold,
                "ndwi_margin": o.ndwi_margin,
                "green_nir_bands": list(self.water_bands),
                "masked_contradicting": n.contradicted,
                "masked_flipping": n.flipped,
                "masked_pixels": n.contradicted + n.flipped,
            }
        if self.masks is not None or o.cloud_policy != "none":
            cov = np.array(list(n.chip_coverage.values())) if n.chip_coverage else np.zeros((0, 1))
            pre["cloud"] = {
                "valid_masks": str(o.valid_masks) if o.valid_masks else None,
                "mask_kind": o.mask_kind,
                "cloud_threshold": o.cloud_threshold,
                "policy": o.cloud_policy,
                "min_valid_coverage": o.min_valid_coverage,
                "mask_bands": list(self.masks.bands) if self.masks is not None else [],
                "mean_coverage_per_date": [round(float(c), 4) for c in cov.mean(axis=0)] if len(cov) else [],
                "chips_skipped_low_coverage": n.skipped_coverage,
                "pixels_interpolated": n.filled,
                "dropped_dates": n.chip_dropped,
                "chip_coverage": n.chip_coverage,
            }
        out: dict = {"preprocessing": pre} if pre else {}
        if self.sensors:
            main = [b for b in src.bands if not any(b in ss.bands for ss in self.sensors)]
            out["sensor_bands"] = {Path(src.images[0]).stem: main, **{ss.name: ss.bands for ss in self.sensors}}
        return out

    def log(self, fb: Feedback) -> None:
        """Report the counts."""
        o, n = self.options, self.counts
        if o.water_mask_class is not None:
            fb.info(
                f"Water shoreline masking (NDWI threshold {o.ndwi_threshold:g}): {n.contradicted + n.flipped} "
                f"label pixels set to 255 ({n.contradicted} contradict the NDWI, {n.flipped} flip between "
                "dates)."
            )
        if n.chip_coverage or n.skipped_coverage:
            n_drop = sum(len(v) for v in n.chip_dropped.values())
            fb.info(
                f"Cloud policy {o.cloud_policy} (min valid coverage {o.min_valid_coverage:g}): {n_drop} chip "
                f"dates dropped, {n.filled} pixels interpolated, {n.skipped_coverage} chips skipped for low "
                "coverage."
            )
        if self.dates and n.chip_dropped and len(n.chip_dropped) == len(n.chip_coverage):
            always = [d for d in self.dates if all(d in v for v in n.chip_dropped.values())]
            if always:
                fb.warning(f"Dates {always} were dropped in every chip; consider removing them from the series.")


def _fill_value(src: ImageSources, sensors: Sequence[SensorSource], fused_or_masked: bool) -> float | None:
    """The value invalid pixels are written as: the input nodata, else a default for the fused dtype."""
    if not fused_or_masked or src.nodata is not None:
        return src.nodata
    dtypes = [src.dtype]
    for ss in sensors:
        with rasterio.open(ss.path) as ds:
            dtypes.append(ds.dtypes[0])
    return ts.default_nodata(str(np.result_type(*dtypes)))


def make_preprocessing(src: ImageSources, options: CleaningOptions) -> ChipPreprocessing | None:
    """A :class:`ChipPreprocessing` for the options, or None when no step is set.

    Updates ``src`` when sensors are fused (their bands appended to ``src.bands``) and when invalid
    pixels need a nodata value the input lacks (``src.nodata``).

    Raises:
        InputError, GridMismatchError, BandMismatchError: see :meth:`CleaningOptions.check`,
            :func:`core.chips.sources.open_sensors`, :class:`core.preprocessing.timeseries.DateMasks`,
            :func:`core.preprocessing.indices.band_positions`.
    """
    options.check(src.kind)
    if not options.enabled:
        return None
    sensors = open_sensors(options.additional_sensors, src) if options.additional_sensors else []
    water_bands = None
    if options.water_mask_class is not None:
        with rasterio.open(src.images[0]) as ds:
            pos = band_positions(["NDWI"], band_names(ds))
        water_bands = (pos["green"] + 1, pos["nir"] + 1)
    masks = None
    if options.valid_masks:
        masks = ts.DateMasks(
            options.valid_masks, src.grid, src.dates or [""], options.mask_kind, options.cloud_threshold
        )
        if src.kind == "single" and len(masks.bands) != 1:
            raise InputError(
                f"The mask raster has {len(masks.bands)} bands for one input raster; give a one-band mask."
            )
    if sensors:
        src.bands = [*src.bands, *[b for ss in sensors for b in ss.bands]]
    src.nodata = _fill_value(src, sensors, bool(sensors) or masks is not None)
    return ChipPreprocessing(options, sensors, masks, water_bands, src.nodata, src.dates)
