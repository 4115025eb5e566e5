"""Classify Pixels input: tiles read from every source raster, masked, cleaned and normalised for the model.

:func:`input_paths` checks the input paths and :func:`open_inputs` opens the rasters on one grid
(:class:`OpenInputs`; a later date on another grid, or all of them at the model's pixel size, resampled).
:class:`TileReader` reads one tile window of all the model's sources (:mod:`core.inference.bands`),
builds the valid-pixel mask (input nodata, GDAL mask bands, mask polygons), applies the training cloud
policy per tile (:class:`CloudPolicy`, when the model was trained with one and valid-data masks are
given) and returns the normalised model input. Mask polygons are loaded by :func:`load_mask`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.features
import rasterio.transform
from rasterio.enums import MaskFlags, Resampling
from rasterio.windows import Window

from ..errors import InputError, NoOverlapError
from ..feedback import Feedback
from ..modelcard import ModelCard
from ..preprocessing.normalize import normalize, valid_mask
from ..raster.grid import RasterGrid, aligned, band_names, window_transform
from ..raster.io import GDAL_IO_LOCK
from .bands import BandSource
from .options import ClassifyOptions, GeoJSON
from .pixel_size import model_grid


def load_mask(mask: str | os.PathLike | Sequence[GeoJSON], crs) -> list[GeoJSON]:
    """Mask polygons as GeoJSON-like geometries in ``crs``.

    Args:
        mask: a vector file (read with geopandas, reprojected to ``crs``), or geometries already in ``crs``.

    Raises:
        InputError: the file cannot be read or holds no polygon.
    """
    if isinstance(mask, (str, os.PathLike)):
        import geopandas as gpd  # optional dependency, only for a mask given as a file

        try:
            gdf = gpd.read_file(mask)
        except Exception as e:
            raise InputError(f"Cannot read the mask layer {mask}: {e}") from e
        if gdf.crs is not None and crs is not None and gdf.crs != crs:
            gdf = gdf.to_crs(crs)
        geoms = [
            g.__geo_interface__
            for g in gdf.geometry
            if g is not None and not g.is_empty and g.geom_type in ("Polygon", "MultiPolygon")
        ]
    else:
        geoms = [g for g in mask if g and g.get("type") in ("Polygon", "MultiPolygon")]
    if not geoms:
        raise InputError("The mask layer holds no polygons; give a polygon layer of the areas to classify.")
    return geoms


@dataclass(frozen=True)
class OpenInputs:
    """The input rasters of one run, open for reading on one grid (see :func:`open_inputs`).

    Attributes:
        paths: the input rasters, in input order (first date first).
        datasets: the open datasets (rasterio, or warped readers of :func:`core.raster.grid.aligned`) on ``grid``.
        names: each raster's band names (from the files themselves).
        grid: the grid every dataset is read on: the first raster's, or the model's pixel size when resampling.
    """

    paths: list[Path]
    datasets: list
    names: list[list[str]]
    grid: RasterGrid


@dataclass(frozen=True)
class ReadArea:
    """Where :class:`TileReader` reads: the extent, the tile size and the mask.

    Attributes:
        window: the extent to classify, pixels of the input grid; tiles are given in extent pixels.
        tile_px: tile edge, pixels (reads smaller than a tile are mirror-padded to it).
        mask: polygons in the raster CRS (:func:`load_mask`), or None.
    """

    window: Window
    tile_px: int
    mask: list[GeoJSON] | None = None


def input_paths(inputs: Sequence[str | os.PathLike], opts: ClassifyOptions) -> list[Path]:
    """The input rasters as paths, after the checks that need no file opened.

    Raises:
        InputError: no input, a missing input, a batch size below 1.
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise InputError("No input raster given.")
    for p in paths:
        if not p.is_file():
            raise InputError(f"Input raster {p} does not exist.")
    if opts.batch_size < 1:
        raise InputError(f"Batch size must be at least 1, got {opts.batch_size}.")
    return paths


def open_inputs(
    stack: contextlib.ExitStack,
    paths: list[Path],
    card: ModelCard,
    resample: bool,
    fb: Feedback,
    warnings: list[str] | None = None,
) -> OpenInputs:
    """The input rasters opened for reading on one grid, with their band names.

    The first raster's grid is the output grid. A later date on another pixel grid that overlaps it (a
    data set that delivers each date on its own grid, e.g. OSCD's abudhabi: same bounds, a few pixels
    fewer) is read through :func:`core.raster.grid.aligned`, resampled bilinearly onto the first date's
    grid; the resampling is reported in ``warnings`` (and so in the log and the run's result). With
    ``resample`` the datasets are read onto :func:`model_grid` instead (band names come from the files
    themselves).

    Raises:
        NoOverlapError: a later date does not overlap the first.
        CRSMismatchError: one date has a CRS and another has none.
    """
    grid = RasterGrid.from_path(paths[0])
    names = []
    for p in paths:
        with rasterio.open(p) as ds:
            names.append(band_names(ds))
    target = model_grid(card, grid) if resample else None
    if resample and target is None:
        fb.info(
            "Resampling asked, but the raster is already on the model's pixel size (or the model "
            "card records none in metres): classified as it is."
        )
    if target is None:
        for p in paths[1:]:
            g = RasterGrid.from_path(p)
            if not grid.same_as(g):
                msg = (
                    f"{p.name} is not on the pixel grid of {paths[0].name} ({grid.describe_difference(g)}): "
                    "it is resampled onto that grid (bilinear) as it is read."
                )
                if warnings is not None:
                    warnings.append(msg)
                else:
                    fb.warning(msg)
        return OpenInputs(
            paths, [stack.enter_context(aligned(p, grid, Resampling.bilinear)) for p in paths], names, grid
        )
    rs = Resampling.average if target.pixel_size[0] > grid.pixel_size[0] else Resampling.bilinear
    fb.info(
        f"Resampling the input from {grid.pixel_size[0]:.6g} to {target.pixel_size[0]:.6g} "
        f"CRS units per pixel ({rs.name}) to match the model; outputs are "
        f"{target.width} x {target.height} px."
    )
    return OpenInputs(paths, [stack.enter_context(aligned(p, target, rs)) for p in paths], names, target)


class TileReader:
    """Reads tiles of all sources, builds the valid mask and the normalised model input.

    Args:
        inputs: the open input rasters (:func:`open_inputs`). sources: the model's bands per raster
            (:func:`core.inference.bands.plan_sources`).
        card: the model card (overrides applied): its ``layout`` (``"BTCHW"``: sources stacked as dates),
            ``input_scale``, spectral ``indices`` (:mod:`core.preprocessing.indices`, appended per date) and
            ``normalization`` (:func:`core.preprocessing.normalize.normalize`).
        area: the extent, tile size and mask polygons.
        cloud: the training cloud policy applied per tile (:func:`open_cloud_policy`), or None.
    """

    def __init__(
        self,
        inputs: OpenInputs,
        sources: list[BandSource],
        card: ModelCard,
        area: ReadArea,
        cloud: CloudPolicy | None = None,
    ) -> None:
        self.datasets, self.sources, self.tile = inputs.datasets, sources, area.tile_px
        self.layout, self.scale = card.layout, card.input_scale
        self.indices, self.normalization = list(card.indices), card.normalization
        self.origin = (int(area.window.col_off), int(area.window.row_off))
        self.mask, self.transform = area.mask, inputs.grid.transform
        self.mask_bounds = _union_bounds(area.mask) if area.mask else None
        self.use_mask_band = [
            bool({MaskFlags.per_dataset, MaskFlags.alpha} & set(ds.mask_flag_enums[0])) for ds in self.datasets
        ]
        self.cloud = cloud

    def read(self, win: Window) -> tuple[np.ndarray | None, np.ndarray]:
        """``win`` in extent pixels -> (input ``([T,] C, tile, tile) float32`` or None, valid ``(h, w) bool``)."""
        h, w = int(win.height), int(win.width)
        awin = Window(win.col_off + self.origin[0], win.row_off + self.origin[1], w, h)
        valid = self._mask_valid(awin, h, w)
        if not valid.any():
            return None, valid
        raw, per_date = [], []
        for s in self.sources:
            ds = self.datasets[s.ds_index]
            with GDAL_IO_LOCK:
                data = ds.read(list(s.bands), window=awin)
                mband = ds.read_masks(s.bands[0], window=awin) if self.use_mask_band[s.ds_index] else None
            ok = valid_mask(data, ds.nodata)
            if mband is not None:
                ok &= mband > 0
            per_date.append(ok)
            raw.append(data)
        if self.cloud is not None:  # fill cloudy/nodata dates as in training; valid where any date is
            raw, ok = self.cloud.apply(raw, np.stack(per_date), awin)
            valid &= ok
        else:
            for ok in per_date:
                valid &= ok
        if not valid.any():
            return None, valid
        vmask = None if valid.all() else valid
        parts = [
            normalize(d * np.float32(self.scale) if self.scale != 1 else d, s.mean, s.std, vmask, self.normalization)
            for d, s in zip(raw, self.sources)
        ]
        if self.indices:
            parts = self._with_indices(parts, raw, vmask)
        x = np.stack(parts) if self.layout == "BTCHW" else np.concatenate(parts)
        if h < self.tile or w < self.tile:  # raster smaller than a tile: mirror-pad, crop after
            pad = [(0, 0)] * (x.ndim - 2) + [(0, self.tile - h), (0, self.tile - w)]
            x = np.pad(x, pad, mode="reflect" if min(h, w) > 1 else "edge")
        return x, valid

    def _with_indices(
        self, parts: list[np.ndarray], raw: list[np.ndarray], vmask: np.ndarray | None
    ) -> list[np.ndarray]:
        """Per model date: its normalised bands, then the spectral indices of its raw bands (see :mod:`core.indices`)."""
        from ..preprocessing.indices import append_indices

        out = []
        for date in dict.fromkeys(s.date for s in self.sources):
            idx = [i for i, s in enumerate(self.sources) if s.date == date]
            names = [n for i in idx for n in self.sources[i].names]
            rw = raw[idx[0]] if len(idx) == 1 else np.concatenate([raw[i].astype(np.float32) for i in idx])
            norm = parts[idx[0]] if len(idx) == 1 else np.concatenate([parts[i] for i in idx])
            out.append(append_indices(norm, rw, names, self.indices, vmask))
        return out

    def _mask_valid(self, awin: Window, h: int, w: int) -> np.ndarray:
        if not self.mask:
            return np.ones((h, w), bool)
        tr = window_transform(awin, self.transform)
        left, top = rasterio.transform.xy(tr, 0, 0, offset="ul")
        right, bottom = rasterio.transform.xy(tr, h, w, offset="ul")
        mb = self.mask_bounds
        if min(left, right) > mb[2] or max(left, right) < mb[0] or min(top, bottom) > mb[3] or max(top, bottom) < mb[1]:
            return np.zeros((h, w), bool)
        return rasterio.features.geometry_mask(self.mask, (h, w), tr, invert=True)


@dataclass
class CloudPolicy:
    """The training cloud policy repeated per tile (see :class:`core.inference.options.ClassifyOptions`
    ``valid_masks``)."""

    masks: Any  # core.preprocessing.timeseries.DateMasks, open
    times: np.ndarray
    policy: str
    min_valid_coverage: float
    fill: np.ndarray  # (T, C) raw values that normalise to 0 (the training means / input scale)

    def apply(self, raw: list[np.ndarray], ok: np.ndarray, awin: Window) -> tuple[list[np.ndarray], np.ndarray]:
        """``raw`` T arrays ``(C, h, w)`` and ``ok`` ``(T, h, w)`` -> filled arrays and ``(h, w)`` validity.

        Dates still invalid after the policy (dropped, or no valid date to interpolate from) get the
        value that normalises to 0, as nodata does in training chips; a pixel is valid when any
        date is.
        """
        from ..preprocessing.timeseries import apply_policy

        with GDAL_IO_LOCK:
            valid = ok & self.masks.read(awin)
        res = apply_policy(np.stack(raw).astype(np.float32), valid, self.times, self.policy, self.min_valid_coverage)
        data = np.where(res.valid[:, None], res.data, self.fill[:, :, None, None]).astype(np.float32)
        return list(data), res.valid.any(axis=0)


def open_cloud_policy(
    card: ModelCard,
    inputs: OpenInputs,
    sources: list[BandSource],
    opts: ClassifyOptions,
    stack: contextlib.ExitStack,
    fb: Feedback,
) -> CloudPolicy | None:
    """The card's cloud policy with the given per-date masks, or None (no policy, or no masks: warned).

    Args:
        card: the model card (its ``training["preprocessing"]["cloud"]``). inputs: the open input rasters.
        sources: the model's bands per raster.
        opts: the run's ``valid_masks``, ``mask_kind`` and ``cloud_threshold``
            (:class:`core.inference.options.ClassifyOptions`).
        stack: keeps the mask raster open for the run.

    Raises:
        InputError: masks given for a model that is not a time-series model.
    """
    cloud = ((card.training or {}).get("preprocessing") or {}).get("cloud") or {}
    policy = cloud.get("policy", "none")
    valid_masks, paths = opts.valid_masks, inputs.paths
    if policy == "none" and valid_masks is None:
        return None
    if card.layout != "BTCHW" or len(sources) != len(paths):
        raise InputError(
            "Valid-data masks apply to time-series models (one raster per date); this model takes "
            f"{card.layout} input. Leave VALID_MASKS empty."
        )
    if valid_masks is None:
        fb.warning(
            f"The model was trained with cloud policy '{policy}' but no valid-data masks were given: the "
            "dates are classified as they are. Give VALID_MASKS (one band per date) to repeat the policy."
        )
        return None
    from ..preprocessing.timeseries import DateMasks, date_offsets, parse_date

    dates = [parse_date(p.name) or str(i) for i, p in enumerate(paths)]
    masks = stack.enter_context(DateMasks(valid_masks, inputs.grid, dates, opts.mask_kind, opts.cloud_threshold))
    policy = policy if policy != "none" else "interpolate"
    fb.info(f"Cloud policy '{policy}' with valid-data masks {Path(valid_masks).name} applied to every tile.")
    fill = np.array([s.mean for s in sources], np.float32) / np.float32(card.input_scale or 1.0)
    return CloudPolicy(masks, date_offsets(dates), policy, float(cloud.get("min_valid_coverage", 0.0)), fill)


def _union_bounds(geoms: Sequence[GeoJSON]) -> tuple[float, float, float, float]:
    b = np.array([rasterio.features.bounds(g) for g in geoms])
    return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())


def check_mask_overlap(geoms: list[GeoJSON], grid: RasterGrid) -> None:
    """Raise :class:`NoOverlapError` when the polygons' bounds miss ``grid`` (the area to classify)."""
    mb, gb = _union_bounds(geoms), grid.bounds
    if mb[0] >= gb[2] or mb[2] <= gb[0] or mb[1] >= gb[3] or mb[3] <= gb[1]:
        raise NoOverlapError(
            f"The mask polygons (bounds {tuple(round(v, 3) for v in mb)}) do not overlap the area "
            f"to classify {tuple(round(v, 3) for v in gb)}; choose a mask inside the raster."
        )
