"""Classify Pixels input: tiles read from every source raster, masked, cleaned and normalised for the model.

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
from rasterio.enums import MaskFlags
from rasterio.windows import Window

from ..errors import InputError, NoOverlapError
from ..feedback import Feedback
from ..modelcard import ModelCard
from ..preprocessing.normalize import normalize, valid_mask
from ..raster.grid import RasterGrid, window_transform
from ..raster.io import GDAL_IO_LOCK
from .bands import BandSource
from .options import GeoJSON


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


class TileReader:
    """Reads tiles of all sources, builds the valid mask and the normalised model input.

    Args:
        datasets: the open input rasters (read on the engine's grid). sources: the model's bands per raster.
        layout: ``"BCHW"`` or ``"BTCHW"`` (sources stacked as dates). scale: the card's ``input_scale``.
        tile: tile edge in pixels (smaller reads are mirror-padded to it).
        origin: ``(col, row)`` of the extent window in the raster, pixels.
        mask: polygons in the raster CRS, or None. transform: the raster's geotransform.
        indices: spectral indices appended per date (:mod:`core.preprocessing.indices`).
        normalization: the card's normalisation kind (:func:`core.preprocessing.normalize.normalize`).

    Attributes:
        cloud: the cloud policy applied per tile, or None.
    """

    def __init__(
        self,
        datasets: list,
        sources: list[BandSource],
        layout: str,
        scale: float,
        tile: int,
        origin: tuple[int, int],
        mask: list[GeoJSON] | None,
        transform,
        indices: Sequence[str] = (),
        normalization: str = "standard",
    ) -> None:
        self.datasets, self.sources, self.layout, self.scale, self.tile = datasets, sources, layout, scale, tile
        self.indices, self.normalization = list(indices), normalization
        self.origin, self.mask, self.transform = origin, mask, transform
        self.mask_bounds = _union_bounds(mask) if mask else None
        self.use_mask_band = [
            bool({MaskFlags.per_dataset, MaskFlags.alpha} & set(ds.mask_flag_enums[0])) for ds in datasets
        ]
        self.cloud: CloudPolicy | None = None

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
    paths: Sequence[Path],
    sources: list[BandSource],
    grid: RasterGrid,
    valid_masks,
    mask_kind: str,
    threshold: float,
    stack: contextlib.ExitStack,
    fb: Feedback,
) -> CloudPolicy | None:
    """The card's cloud policy with the given per-date masks, or None (no policy, or no masks: warned).

    Args:
        valid_masks, mask_kind, threshold: as ``valid_masks``, ``mask_kind`` and ``cloud_threshold`` of
            :class:`core.inference.options.ClassifyOptions`.
        stack: keeps the mask raster open for the run.

    Raises:
        InputError: masks given for a model that is not a time-series model.
    """
    cloud = ((card.training or {}).get("preprocessing") or {}).get("cloud") or {}
    policy = cloud.get("policy", "none")
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
    masks = stack.enter_context(DateMasks(valid_masks, grid, dates, mask_kind, threshold))
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
