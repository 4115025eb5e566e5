"""Tiled, streamed ONNX Runtime inference: a raster (or a time series, or a pair) in, a class map out.

Counterpart of ArcGIS "Classify Pixels Using Deep Learning" (arguments tile_size, padding,
batch_size, test_time_augmentation; seed 004) with the overlapping-patch inference of seed 002
(large patches, overlap between neighbours "to avoid the border effect").

How it works:

1. The model card (:mod:`core.modelcard`) says which bands, in which order, with which normalisation
   (:func:`core.raster.normalize`), and which class value each output channel predicts.
2. Tiles come from :func:`core.raster.tile_offsets` (``cover_edges=True``, the grid of
   :func:`core.raster.tile_windows`) over the extent window, ``stride = tile_size - overlap``. A
   reader thread reads, masks and normalises the next batches while ``session.run`` computes.
3. Tile probabilities are blended by :class:`core.blending.TileBlender` with smooth Gaussian
   cross-fade weights (``"gaussian"``) or the ArcGIS-like centre crop (``"center"``: each pixel
   from the one tile whose centre region holds it). Tiles are visited row by row and, within a
   row, column by column, so columns become final as soon as the next tile has started; only the
   vertical overlap is carried to the next row.
4. Finished chunks are normalised by the summed weights, argmax'ed and written by a writer thread
   into tiled DEFLATE GeoTIFFs opened once inside :func:`core.raster.atomic_output`. Memory:
   ``(K + 1) x overlap x width x 4`` bytes of carry buffer + ``K x tile^2`` working buffers, the
   batches in flight, the ONNX Runtime arena and a bounded GDAL block cache; it does not grow with
   the raster height and barely with its width.

Never imports torch or :mod:`models`: numpy, rasterio and onnxruntime only (geopandas lazily, for a
mask given as a file).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import csv
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.features
import rasterio.transform
from rasterio.enums import MaskFlags, Resampling
from rasterio.windows import Window

from .. import classes as styles
from ..chips.manifest import ClassInfo
from ..errors import BandMismatchError, EmptyAreaError, InputError, NoOverlapError
from ..feedback import Feedback, check_canceled, ensure_feedback
from ..modelcard import ModelCard
from ..preprocessing.normalize import normalize, valid_mask
from ..raster.grid import (
    IGNORE_INDEX,
    RasterGrid,
    aligned,
    band_names,
    pixel_area_m2,
    require_same_grid,
    window_from_bounds_clipped,
)
from ..raster.io import atomic_output, geotiff_profile
from ..raster.tiling import tile_offsets
from .blending import Blending, Chunk, TileBlender, TileSlot, axis_weights, dihedral, visiting_order
from .session import LoadedModel, card_of_session, open_session, prepare_model, resolve_providers

__all__ = ["InferenceResult", "axis_weights", "classify_raster", "dihedral", "model_grid", "open_session",
           "parse_band_map", "plan_sources", "resolve_providers", "select_bands", "write_area_table"]

#: Serialises GDAL calls of the reader and writer threads. GDAL's block cache is global: a thread that
#: needs room evicts (and so writes) dirty blocks of *any* dataset, and GDAL datasets must not be used by
#: two threads at once. Without this lock the reader thread could flush the output's dirty block while
#: the writer thread was writing into it, and a finished chunk was occasionally lost (left nodata):
#: 3 of 60 runs of a 256² raster when the cache was already full. Only I/O is serialised; ONNX Runtime,
#: normalising and blending still overlap with it.
GDAL_IO_LOCK = threading.RLock()

#: Output class raster nodata (never a class value).
NODATA = IGNORE_INDEX
GeoJSON = Mapping[str, Any]


# ----------------------------------------------------------------------------------- result
@dataclass
class InferenceResult:
    """What :func:`classify_raster` produced.

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


# ------------------------------------------------------------------------------- band plans
@dataclass(frozen=True)
class _Source:
    """Bands of one input raster that form one date of the model input."""

    ds_index: int
    bands: tuple[int, ...]  # 1-based raster band indexes, model order
    mean: tuple[float, ...]
    std: tuple[float, ...]
    date: int = 0  # model date this source belongs to (sources of one date are concatenated)
    names: tuple[str, ...] = ()  # the model's names of these bands (to compute spectral indices)


def parse_band_map(text: str | Sequence[int] | None) -> list[int] | None:
    """``"4,3,2,8"`` (or a list) -> ``[4, 3, 2, 8]``; empty -> None.

    Raises:
        InputError: entries that are not positive integers.
    """
    if text is None:
        return None
    if isinstance(text, str):
        parts = [p for p in re.split(r"[,;\s]+", text.strip()) if p]
        if not parts:
            return None
        if not all(p.isdigit() and int(p) > 0 for p in parts):
            raise InputError(f"Band mapping {text!r} must list 1-based band numbers, e.g. '4,3,2,8'.")
        return [int(p) for p in parts]
    vals = [int(v) for v in text]
    if any(v <= 0 for v in vals):
        raise InputError(f"Band mapping {vals} must list 1-based band numbers.")
    return vals or None


def select_bands(model_bands: Sequence[str], raster_bands: Sequence[str], raster_name: str,
                 band_map: Sequence[int] | None = None, positional: bool = False) -> tuple[int, ...]:
    """1-based raster bands feeding the model bands, in model order.

    Matching: ``band_map`` if given; else band names (case-insensitive); else, when the raster has
    no band descriptions (``B1``...) or ``positional`` (Deepness models take the first C bands), the
    first ``len(model_bands)`` bands.

    Raises:
        BandMismatchError: listing the model bands and the raster bands, and how to map them.
    """
    n, have = len(model_bands), list(raster_bands)
    if band_map:
        bad = [b for b in band_map if not 1 <= b <= len(have)]
        if len(band_map) != n or bad:
            raise BandMismatchError(
                f"Band mapping {list(band_map)} does not fit: the model takes {n} bands {list(model_bands)} and "
                f"{raster_name} has {len(have)} bands {have}. Give one 1-based raster band per model band."
            )
        return tuple(int(b) for b in band_map)
    low = [b.strip().lower() for b in have]
    missing = [b for b in model_bands if b.strip().lower() not in low]
    if not missing:
        return tuple(low.index(b.strip().lower()) + 1 for b in model_bands)
    generic = all(re.fullmatch(r"b\d+", b) for b in low)
    if (positional and len(have) >= n) or (generic and len(have) == n):
        return tuple(range(1, n + 1))
    example = ",".join(str(i + 1) for i in range(min(n, len(have))))
    raise BandMismatchError(
        f"The model expects {n} bands {list(model_bands)} (in this order) but {raster_name} has {len(have)} bands "
        f"{have}; not found: {missing}. Name the raster bands like the model's, or set the band mapping to the "
        f"1-based raster band of each model band (e.g. '{example}')."
    )


def plan_sources(card: ModelCard, inputs: Sequence[Path], names: Sequence[Sequence[str]],
                 band_map: Sequence[int] | None) -> list[_Source]:
    """One :class:`_Source` per model date: 1 (BCHW), T (BTCHW) or 2 (change pair).

    Raises:
        InputError: wrong number of rasters for the model (time steps, pair).
        BandMismatchError: see :func:`select_bands`.
    """
    pos = card.architecture == "deepness"
    bn = tuple(card.bands)
    if card.indices:
        from ..preprocessing.indices import band_positions

        band_positions(card.indices, card.bands)  # BandMismatchError naming the missing band
    if card.layout == "BTCHW":
        if len(inputs) != card.time_steps:
            raise InputError(f"The model takes a series of {card.time_steps} dates but {len(inputs)} raster(s) were "
                             "given; pass the first date as INPUT and the others, in date order, as ADDITIONAL_INPUTS.")
        return [_Source(t, select_bands(card.bands, names[t], inputs[t].name, band_map, pos), tuple(card.mean),
                        tuple(card.std), t, bn) for t in range(len(inputs))]
    if card.task == "change":
        b2 = card.bands2 or card.bands
        m2, s2 = (card.mean2, card.std2) if card.mean2 else (card.mean, card.std)
        if len(inputs) == 2:
            return [_Source(0, select_bands(card.bands, names[0], inputs[0].name, band_map, pos),
                            tuple(card.mean), tuple(card.std), 0, bn),
                    _Source(1, select_bands(b2, names[1], inputs[1].name, band_map, pos), tuple(m2), tuple(s2), 1,
                            tuple(b2))]
        if len(inputs) == 1:  # one composite raster holding both dates (ArcGIS style)
            both = select_bands([*card.bands, *[f"{b} (date 2)" for b in b2]], names[0], inputs[0].name, band_map,
                                positional=True)
            c = len(card.bands)
            return [_Source(0, both[:c], tuple(card.mean), tuple(card.std), 0, bn),
                    _Source(0, both[c:], tuple(m2), tuple(s2), 1, tuple(b2))]
        raise InputError(f"A change model takes two rasters (or one two-date composite); {len(inputs)} were given.")
    sensors = sensor_groups(card)
    if len(sensors) > 1:
        return _sensor_sources(card, sensors, inputs, names)
    if len(inputs) != 1:
        raise InputError(f"This model classifies one raster at a time but {len(inputs)} were given; remove the "
                         "additional inputs (they are for time-series and change models).")
    return [_Source(0, select_bands(card.bands, names[0], inputs[0].name, band_map, pos), tuple(card.mean),
                    tuple(card.std), 0, bn)]


def sensor_groups(card: ModelCard) -> list[tuple[str, list[str]]]:
    """``[(sensor, [model band names])]`` of a multi-sensor (early fusion) model, in channel order; [] otherwise.

    Read from ``card.training["sensor_bands"]`` (written by :func:`core.export.card_from_manifest`
    from the chip manifest's ``sources["sensor_bands"]``, see :mod:`core.chips`).
    """
    groups = (card.training or {}).get("sensor_bands") or {}
    return [(str(k), list(v)) for k, v in groups.items()]


def _sensor_sources(card: ModelCard, sensors: list[tuple[str, list[str]]], inputs: Sequence[Path],
                    names: Sequence[Sequence[str]]) -> list[_Source]:
    """One source per sensor raster (INPUT = first sensor, ADDITIONAL_INPUTS = the others, in card order).

    A sensor's model band names carry the sensor prefix (``S1_VV``); the raster's bands may be named
    with or without it.
    """
    if len(inputs) != len(sensors):
        raise InputError(f"The model fuses {len(sensors)} sensors ({', '.join(s for s, _ in sensors)}) but "
                         f"{len(inputs)} raster(s) were given; pass the {sensors[0][0]} raster as INPUT and the "
                         f"{', '.join(s for s, _ in sensors[1:])} raster(s), in this order, as ADDITIONAL_INPUTS.")
    out, off = [], 0
    for i, (sensor, model_names) in enumerate(sensors):
        n = len(model_names)
        low = [b.lower() for b in names[i]]
        plain = [b[len(sensor) + 1:] if b.lower().startswith(sensor.lower() + "_") and b.lower() not in low else b
                 for b in model_names]
        bands = select_bands(plain, names[i], inputs[i].name)
        out.append(_Source(i, bands, tuple(card.mean[off:off + n]), tuple(card.std[off:off + n]), 0,
                           tuple(card.bands[off:off + n])))
        off += n
    if off != len(card.bands):
        raise InputError(f"The model card lists {len(card.bands)} bands but its sensors {off}; the model file is "
                         "inconsistent, export it again.")
    return out


# ------------------------------------------------------------------------------------ reading
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
        geoms = [g.__geo_interface__ for g in gdf.geometry if g is not None and not g.is_empty
                 and g.geom_type in ("Polygon", "MultiPolygon")]
    else:
        geoms = [g for g in mask if g and g.get("type") in ("Polygon", "MultiPolygon")]
    if not geoms:
        raise InputError("The mask layer holds no polygons; give a polygon layer of the areas to classify.")
    return geoms


class _Reader:
    """Reads tiles of all sources, builds the valid mask and the normalised model input."""

    def __init__(self, datasets: list, sources: list[_Source], layout: str, scale: float, tile: int,
                 origin: tuple[int, int], mask: list[GeoJSON] | None, transform,
                 indices: Sequence[str] = ()) -> None:
        self.datasets, self.sources, self.layout, self.scale, self.tile = datasets, sources, layout, scale, tile
        self.indices = list(indices)
        self.origin, self.mask, self.transform = origin, mask, transform
        self.mask_bounds = _union_bounds(mask) if mask else None
        self.use_mask_band = [bool({MaskFlags.per_dataset, MaskFlags.alpha} & set(ds.mask_flag_enums[0]))
                              for ds in datasets]
        self.cloud: _CloudPolicy | None = None

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
        parts = [normalize(d * np.float32(self.scale) if self.scale != 1 else d, s.mean, s.std, vmask)
                 for d, s in zip(raw, self.sources)]
        if self.indices:
            parts = self._with_indices(parts, raw, vmask)
        x = np.stack(parts) if self.layout == "BTCHW" else np.concatenate(parts)
        if h < self.tile or w < self.tile:  # raster smaller than a tile: mirror-pad, crop after
            pad = [(0, 0)] * (x.ndim - 2) + [(0, self.tile - h), (0, self.tile - w)]
            x = np.pad(x, pad, mode="reflect" if min(h, w) > 1 else "edge")
        return x, valid

    def _with_indices(self, parts: list[np.ndarray], raw: list[np.ndarray], vmask: np.ndarray | None) -> list[np.ndarray]:
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
        tr = rasterio.windows.transform(awin, self.transform)
        left, top = rasterio.transform.xy(tr, 0, 0, offset="ul")
        right, bottom = rasterio.transform.xy(tr, h, w, offset="ul")
        mb = self.mask_bounds
        if min(left, right) > mb[2] or max(left, right) < mb[0] or min(top, bottom) > mb[3] or max(top, bottom) < mb[1]:
            return np.zeros((h, w), bool)
        return rasterio.features.geometry_mask(self.mask, (h, w), tr, invert=True)


@dataclass
class _CloudPolicy:
    """The training cloud policy repeated per tile (see :func:`classify_raster` ``valid_masks``)."""

    masks: Any  # core.timeseries.DateMasks, open
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


def _cloud_preprocessing(card: ModelCard, paths: Sequence[Path], sources: list[_Source], grid: RasterGrid,
                         valid_masks, mask_kind: str, threshold: float, stack: contextlib.ExitStack,
                         fb: Feedback) -> _CloudPolicy | None:
    """The card's cloud policy with the given per-date masks, or None (no policy, or no masks: warned)."""
    cloud = ((card.training or {}).get("preprocessing") or {}).get("cloud") or {}
    policy = cloud.get("policy", "none")
    if policy == "none" and valid_masks is None:
        return None
    if card.layout != "BTCHW" or len(sources) != len(paths):
        raise InputError("Valid-data masks apply to time-series models (one raster per date); this model takes "
                         f"{card.layout} input. Leave VALID_MASKS empty.")
    if valid_masks is None:
        fb.warning(f"The model was trained with cloud policy '{policy}' but no valid-data masks were given: the "
                   "dates are classified as they are. Give VALID_MASKS (one band per date) to repeat the policy.")
        return None
    from ..chips.export import parse_date
    from ..preprocessing.timeseries import DateMasks, date_offsets

    dates = [parse_date(p.name) or str(i) for i, p in enumerate(paths)]
    masks = stack.enter_context(DateMasks(valid_masks, grid, dates, mask_kind, threshold))
    policy = policy if policy != "none" else "interpolate"
    fb.info(f"Cloud policy '{policy}' with valid-data masks {Path(valid_masks).name} applied to every tile.")
    fill = np.array([s.mean for s in sources], np.float32) / np.float32(card.input_scale or 1.0)
    return _CloudPolicy(masks, date_offsets(dates), policy, float(cloud.get("min_valid_coverage", 0.0)), fill)


def _union_bounds(geoms: Sequence[GeoJSON]) -> tuple[float, float, float, float]:
    b = np.array([rasterio.features.bounds(g) for g in geoms])
    return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())


# ------------------------------------------------------------------------------------ writing
class _Writer:
    """Turns finished chunks into class values (+ probabilities) and writes them (writer thread)."""

    def __init__(self, cls_ds, prob_ds, classes: list[ClassInfo]) -> None:
        self.cls_ds, self.prob_ds = cls_ds, prob_ds
        self.lut = np.array([c.value for c in classes], np.uint8)
        self.counts = np.zeros(len(classes), np.int64)
        self.nodata = 0

    def write(self, chunk: Chunk) -> None:
        """Normalise ``chunk`` by its weights, argmax, write class values (nodata 255) and probabilities."""
        wsum = chunk.wsum
        valid = chunk.valid & (wsum > 0)
        probs = chunk.acc
        if self.prob_ds is not None:  # argmax does not need the division: wsum > 0 is one factor per pixel
            probs /= np.where(wsum > 0, wsum, np.float32(1))
        out = self.lut[_argmax0(probs)]
        out[~valid] = NODATA
        per_value = np.bincount(out.ravel(), minlength=256)
        self.counts += per_value[self.lut]
        self.nodata += int(per_value[NODATA])
        win = Window(chunk.col, chunk.row, out.shape[1], out.shape[0])
        if self.prob_ds is not None:
            probs[:, ~valid] = np.nan
        with GDAL_IO_LOCK:
            self.cls_ds.write(out, 1, window=win)
            if self.prob_ds is not None:
                self.prob_ds.write(probs, window=win)


def _argmax0(a: np.ndarray) -> np.ndarray:
    """``argmax(a, axis=0)`` as uint8 for ``(K, H, W)`` float32, in K contiguous passes.

    ``np.argmax(axis=0)`` first copies the array into a (H, W, K) layout; this does not. Ties go to
    the lowest k, as with numpy.
    """
    best = a[0].copy()
    idx = np.zeros(a.shape[1:], np.uint8)
    for k in range(1, a.shape[0]):
        better = a[k] > best
        idx[better] = k
        np.maximum(best, a[k], out=best)
    return idx


def write_area_table(path: Path, classes: list[ClassInfo], counts: np.ndarray, area_m2: float | None) -> None:
    """CSV ``value,name,pixels,m2,ha,percent`` (percent of classified pixels; m2/ha empty without a CRS)."""
    total = int(counts.sum())
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        wr = csv.writer(f)
        wr.writerow(["value", "name", "pixels", "m2", "ha", "percent"])
        for c, n in zip(classes, counts):
            m2 = "" if area_m2 is None else f"{n * area_m2:.2f}"
            ha = "" if area_m2 is None else f"{n * area_m2 / 1e4:.4f}"
            wr.writerow([c.value, c.name, int(n), m2, ha, f"{100.0 * n / total:.4f}" if total else "0"])


# ------------------------------------------------------------------------------------- engine
def _prefetch(fn, items: Sequence, depth: int, pool: cf.Executor) -> Iterator:
    """Yield ``fn(item)`` in order, keeping ``depth`` calls running ahead in ``pool``."""
    q: collections.deque = collections.deque()
    it = iter(items)
    for item in it:
        q.append(pool.submit(fn, item))
        if len(q) > depth:
            break
    while q:
        yield q.popleft().result()
        nxt = next(it, None)
        if nxt is not None:
            q.append(pool.submit(fn, nxt))


def classify_raster(
    inputs: Sequence[str | os.PathLike],
    model: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    prob_path: str | os.PathLike | None = None,
    extent: tuple[float, float, float, float] | None = None,
    mask: str | os.PathLike | Sequence[GeoJSON] | None = None,
    tile_size: int | None = None,
    overlap: int | None = None,
    batch_size: int = 4,
    blending: Blending = "gaussian",
    tta: bool = False,
    device: str = "auto",
    threads: int = 0,
    band_map: Sequence[int] | None = None,
    area_table_path: str | os.PathLike | None = None,
    valid_masks: str | os.PathLike | None = None,
    mask_kind: str = "valid",
    cloud_threshold: float = 0.5,
    resample: bool = False,
    feedback: Feedback | None = None,
) -> InferenceResult:
    """Classify a raster (or series, or pair) with an ONNX model, tile by tile, streamed.

    Args:
        inputs: one raster (BCHW model), T rasters on one grid (BTCHW model, T = ``card.time_steps``),
            or two rasters (task ``"change"``: dates stacked as 2C channels).
        model: ``.onnx`` file with our model card or Deepness metadata.
        out_path: class raster (GeoTIFF, uint8 class values, nodata 255, colour table; QML beside it).
        prob_path: optional float32 probability raster, one band per class (nodata NaN).
        extent: ``(left, bottom, right, top)`` in the CRS of ``inputs[0]``; None: the whole raster.
        mask: polygons (vector file, or GeoJSON-like geometries in the raster CRS); pixels outside
            become nodata.
        valid_masks: for a time-series model trained with a cloud policy (Export Training Tiles
            ``CLOUD_POLICY``, recorded in the card's ``training["preprocessing"]["cloud"]``): a raster
            with one band per input date (or dates in its band descriptions) marking valid pixels;
            the same policy (drop / linear temporal interpolation, :func:`core.timeseries.apply_policy`)
            is applied to every tile before normalisation, so the model sees what it saw in training.
        mask_kind, cloud_threshold: how ``valid_masks`` is read (:class:`core.timeseries.DateMasks`):
            ``valid`` (non-zero = valid), ``cloud`` (non-zero = cloud) or ``probability``.
        tile_size: tile edge in pixels (None/0: the card's; models with a fixed input size use theirs).
        overlap: pixels shared by neighbouring tiles (None/negative: the card's); ``< tile_size``.
        batch_size: tiles per ``session.run`` (models with a fixed batch of 1 run one at a time).
        blending: ``"gaussian"`` smooth weights or ``"center"`` crop (see :func:`axis_weights`).
        tta: average the 8 dihedral transforms (8x slower).
        device: ``auto``/``cpu``/``cuda``/``cuda:N``/``tensorrt`` (see :func:`resolve_providers`).
        threads: ONNX Runtime intra-op threads, 0 = all cores.
        band_map: 1-based raster band per model band (per date), overriding name matching.
        area_table_path: optional CSV of per-class pixels, m2, ha and percent.
        resample: read the inputs resampled to the model's pixel size (the card's ``pixel_size``, see
            :func:`model_grid`; average when coarsening, bilinear when refining) and write the outputs
            on that grid. Without it, a pixel size more than 25 % off the model's is only warned about.
        feedback: progress, cancel and log.

    Returns:
        :class:`InferenceResult`.

    Raises:
        ModelFileError: missing/corrupt model, no card and no Deepness keys, inconsistent output.
        BandMismatchError: bands of the raster do not match the model's (message lists both).
        GridMismatchError: several inputs not on one grid.
        NoOverlapError: ``extent`` (or the mask) outside the raster.
        InputError: bad parameters, wrong number of dates, nothing valid to classify.
        CanceledError: canceled; no output file is left behind.
    """
    fb = ensure_feedback(feedback)
    paths = [Path(p) for p in inputs]
    if not paths:
        raise InputError("No input raster given.")
    for p in paths:
        if not p.is_file():
            raise InputError(f"Input raster {p} does not exist.")
    if batch_size < 1:
        raise InputError(f"Batch size must be at least 1, got {batch_size}.")
    sess, warn = open_session(model, device, threads)
    warnings = [warn] if warn else []
    card = card_of_session(sess)
    if len(sess.get_outputs()) > 1:
        warnings.append(f"The model has {len(sess.get_outputs())} outputs; only the first "
                        f"({sess.get_outputs()[0].name}) is used.")
    grid = require_same_grid(paths, "input rasters (dates)") if len(paths) > 1 else RasterGrid.from_path(paths[0])

    with contextlib.ExitStack() as stack:
        datasets = [stack.enter_context(rasterio.open(p)) for p in paths]
        names = [band_names(ds) for ds in datasets]
        if resample:
            target = model_grid(card, grid)
            if target is None:
                fb.info("Resampling asked, but the raster is already on the model's pixel size (or the model "
                        "card records none in metres): classified as it is.")
            else:
                rs = Resampling.average if target.pixel_size[0] > grid.pixel_size[0] else Resampling.bilinear
                fb.info(f"Resampling the input from {grid.pixel_size[0]:.6g} to {target.pixel_size[0]:.6g} "
                        f"CRS units per pixel ({rs.name}) to match the model; outputs are "
                        f"{target.width} x {target.height} px.")
                datasets = [stack.enter_context(aligned(p, target, rs)) for p in paths]
                grid = target
        sources = plan_sources(card, paths, names, band_map)
        tile, ov = tile_params(sess, card, tile_size, overlap, warnings)
        ext = window_from_bounds_clipped(grid, extent) if extent else Window(0, 0, grid.width, grid.height)
        ogrid = RasterGrid(grid.crs, grid.window_transform(ext), int(ext.width), int(ext.height))
        geoms = load_mask(mask, grid.crs) if mask is not None else None
        if geoms is not None:
            _check_mask_overlap(geoms, ogrid)
        _check_pixel_size(card, grid, warnings)
        for w in warnings:
            fb.warning(w)

        channels = [len(s.bands) for s in sources]
        n_idx = len(card.indices)
        x_shape = ((len(sources), channels[0] + n_idx) if card.layout == "BTCHW"
                   else (sum(channels) + n_idx * len({s.date for s in sources}),)) + (tile, tile)
        m = prepare_model(sess, card, tile, batch_size, x_shape)
        provider = sess.get_providers()[0]
        fb.info(f"Execution provider: {provider}; tile {tile} px, overlap {ov} px, batch {m.run_batch}, "
                f"blending {blending}{', TTA x8' if tta else ''}; extent {ogrid.width} x {ogrid.height} px.")

        reader = _Reader(datasets, sources, card.layout, card.input_scale, tile, (int(ext.col_off), int(ext.row_off)),
                         geoms, grid.transform, card.indices)
        reader.cloud = _cloud_preprocessing(card, paths, sources, grid, valid_masks, mask_kind, cloud_threshold, stack, fb)
        return _run(m, reader, ogrid, tile, ov, batch_size, blending, tta, Path(out_path),
                    Path(prob_path) if prob_path else None, Path(area_table_path) if area_table_path else None,
                    provider, warnings, fb)


def tile_params(sess, card: ModelCard, tile_size: int | None, overlap: int | None,
                 warnings: list[str]) -> tuple[int, int]:
    """Tile size and overlap (pixels) from the arguments, the card, and a fixed model input size."""
    tile = int(tile_size) if tile_size and tile_size > 0 else int(card.tile_size)
    fixed = sess.get_inputs()[0].shape[-1]
    if isinstance(fixed, int) and fixed > 0 and fixed != tile:
        if tile_size:
            warnings.append(f"The model only accepts {fixed} px tiles; tile size {tile_size} replaced by {fixed}.")
        tile = fixed
    if overlap is None or overlap < 0:
        ov = int(round(card.overlap * tile / card.tile_size)) if card.tile_size else tile // 4
    else:
        ov = int(overlap)
    if tile < 8:
        raise InputError(f"Tile size {tile} px is too small; use at least 64 px (the model's is {card.tile_size}).")
    if not 0 <= ov < tile:
        raise InputError(f"Overlap {ov} px must be smaller than the tile size {tile} px; use about a quarter of it.")
    return tile, ov


def _check_mask_overlap(geoms: list[GeoJSON], grid: RasterGrid) -> None:
    mb, gb = _union_bounds(geoms), grid.bounds
    if mb[0] >= gb[2] or mb[2] <= gb[0] or mb[1] >= gb[3] or mb[3] <= gb[1]:
        raise NoOverlapError(f"The mask polygons (bounds {tuple(round(v, 3) for v in mb)}) do not overlap the area "
                             f"to classify {tuple(round(v, 3) for v in gb)}; choose a mask inside the raster.")


def _metres_per_unit(grid: RasterGrid) -> tuple[float, float] | None:
    """Metres per CRS unit along x and y: the linear unit of a projected CRS; for a geographic CRS,
    1 degree = 111.32 km (x: times cos of the centre latitude). None without a CRS."""
    if grid.crs is None:
        return None
    if grid.crs.is_projected:
        f = grid.crs.linear_units_factor[1] if grid.crs.linear_units_factor else 1.0
        return f, f
    lat = (grid.bounds[1] + grid.bounds[3]) / 2.0
    return 111_320.0 * float(np.cos(np.deg2rad(lat))), 111_320.0


def _card_metres(card: ModelCard) -> tuple[float, float] | None:
    """The model's training pixel size ``(x, y)`` in metres, or None when the card has none in metres."""
    if not card.pixel_size or card.pixel_size_units != "metre" or card.pixel_size[0] <= 0:
        return None
    px = float(card.pixel_size[0])
    py = float(card.pixel_size[1]) if len(card.pixel_size) > 1 and card.pixel_size[1] > 0 else px
    return px, py


def model_grid(card: ModelCard, grid: RasterGrid, rel_tol: float = 0.01) -> RasterGrid | None:
    """``grid``'s extent (same CRS, same upper-left corner) on the model's pixel size.

    Args:
        card: the model card; its ``pixel_size`` (metres) is the target.
        grid: the input raster's grid (north-up). Geographic CRSs get the metre size converted at the
            centre latitude (see :func:`_metres_per_unit`).
        rel_tol: relative difference below which the pixel sizes count as equal.

    Returns:
        The resampled grid (width/height rounded to whole pixels), or None when the sizes already match
        or the card records no pixel size in metres.
    """
    want, per_unit = _card_metres(card), _metres_per_unit(grid)
    if want is None or per_unit is None:
        return None
    tx, ty = want[0] / per_unit[0], want[1] / per_unit[1]
    px, py = grid.pixel_size
    if abs(px / tx - 1) <= rel_tol and abs(py / ty - 1) <= rel_tol:
        return None
    left, bottom, right, top = grid.bounds
    return RasterGrid(grid.crs, rasterio.transform.from_origin(left, top, tx, ty),
                      max(1, round((right - left) / tx)), max(1, round((top - bottom) / ty)))


def _check_pixel_size(card: ModelCard, grid: RasterGrid, warnings: list[str]) -> None:
    """Warn when the raster's pixels differ from the training pixels by more than 25 %.

    Geographic rasters are compared at their centre latitude (1 degree = 111.32 km x cos(lat)).
    """
    want, per_unit = _card_metres(card), _metres_per_unit(grid)
    if want is None or per_unit is None:
        return
    have = grid.pixel_size[0] * per_unit[0]
    if not 0.8 <= have / want[0] <= 1.25:
        warnings.append(f"The raster's pixels are about {have:.3g} m but the model was trained on {want[0]:.3g} m "
                        "pixels; results may be poor. Set RESAMPLE (resample=True) to classify it resampled "
                        "to the model's pixel size, or warp it yourself (Raster > Projections > Warp).")


def _run(m: LoadedModel, reader: _Reader, grid: RasterGrid, tile: int, ov: int, batch_size: int, blending: Blending,
         tta: bool, out_path: Path, prob_path: Path | None, table_path: Path | None, provider: str,
         warnings: list[str], fb: Feedback) -> InferenceResult:
    """The streamed tile loop (see module docstring); writes all outputs atomically."""
    stride = tile - ov
    slots, spans = visiting_order(grid.width, grid.height, tile, stride)
    wy = dict(zip(tile_offsets(grid.height, tile, stride), axis_weights(grid.height, tile, stride, blending)))
    wx = dict(zip(tile_offsets(grid.width, tile, stride), axis_weights(grid.width, tile, stride, blending)))
    blender = TileBlender(len(m.classes), grid.width, grid.height, tile, stride, spans)
    batches = [slots[i:i + batch_size] for i in range(0, len(slots), batch_size)]
    t0 = time.perf_counter()
    tiles_run = 0
    with contextlib.ExitStack() as stack:
        # rasterio passes GDAL_CACHEMAX to GDALSetCacheMax64: bytes, not MB (64 would be 64 bytes)
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=_gdal_cache_mb(grid, tile, len(m.classes), prob_path) * 2**20))
        cls_ds, prob_ds = _open_outputs(stack, grid, m.classes, out_path, prob_path)
        writer = _Writer(cls_ds, prob_ds, m.classes)
        rpool = stack.enter_context(_pool())
        wpool = stack.enter_context(_pool())
        pending: collections.deque[cf.Future] = collections.deque()

        def read_batch(b: list[TileSlot]) -> tuple[list[tuple[TileSlot, bool, np.ndarray]], np.ndarray | None]:
            """(slot, has input, valid mask) per tile, and the stacked inputs of the tiles to run."""
            tiles = [(s, *reader.read(Window(s.col, s.row, s.w, s.h))) for s in b]
            xs = [x for _, x, _ in tiles if x is not None]
            return [(s, x is not None, v) for s, x, v in tiles], (np.stack(xs) if xs else None)

        for bi, (batch, x_run) in enumerate(_prefetch(read_batch, batches, 2, rpool)):
            check_canceled(fb)
            probs = _predict(m, x_run, tta) if x_run is not None else None
            j = 0
            for s, x, valid in batch:
                p = None
                if x:
                    p, j = probs[j, :, :s.h, :s.w], j + 1
                for chunk in blender.add(s, p, wy[s.row][:s.h, None] * wx[s.col][None, :s.w], valid):
                    while len(pending) >= 2:  # bound the queue: at most two chunks wait for the writer
                        pending.popleft().result()
                    pending.append(wpool.submit(writer.write, chunk))
            tiles_run += 0 if x_run is None else len(x_run)
            fb.set_progress(100.0 * (bi + 1) / len(batches))
        while pending:
            pending.popleft().result()
        if writer.counts.sum() == 0:
            raise EmptyAreaError("Nothing to classify: every pixel of the area is nodata (or outside the mask). "
                             "Check the raster's nodata value, the extent and the mask.")
    seconds = time.perf_counter() - t0
    qml = styles.write_class_qml(out_path.with_suffix(".qml"), m.classes, NODATA)
    if table_path is not None:
        write_area_table(table_path, m.classes, writer.counts, pixel_area_m2(grid))
    mps = grid.width * grid.height / max(seconds, 1e-9) / 1e6
    fb.info(f"Classified {grid.width * grid.height / 1e6:.2f} Mpx in {seconds:.1f} s: {mps:.2f} Mpx/s "
            f"({tiles_run}/{len(slots)} tiles run on {provider}).")
    return InferenceResult(
        output=out_path, qml=qml, probabilities=prob_path, area_table=table_path, classes=m.classes,
        pixel_counts={c.value: int(n) for c, n in zip(m.classes, writer.counts)}, nodata_pixels=writer.nodata,
        provider=provider, seconds=seconds, megapixels_per_s=mps, tiles=len(slots), tiles_run=tiles_run,
        tile_size=tile, overlap=ov, batch_size=m.run_batch, buffer_bytes=blender.nbytes, warnings=warnings,
    )


def _open_outputs(stack: contextlib.ExitStack, grid: RasterGrid, classes: list[ClassInfo], out_path: Path,
                  prob_path: Path | None):
    """Open the class (and probability) GeoTIFFs inside :func:`core.raster.atomic_output`."""
    cls_tmp = stack.enter_context(atomic_output(out_path))
    cls_ds = stack.enter_context(rasterio.open(cls_tmp, "w", **geotiff_profile(grid, 1, "uint8", nodata=NODATA)))
    cls_ds.write_colormap(1, styles.colormap(classes))
    cls_ds.set_band_description(1, "class")
    prob_ds = None
    if prob_path is not None:
        prob_tmp = stack.enter_context(atomic_output(prob_path))
        prof = geotiff_profile(grid, len(classes), "float32", nodata=float("nan"))
        prob_ds = stack.enter_context(rasterio.open(prob_tmp, "w", **prof))
        for i, c in enumerate(classes, 1):
            prob_ds.set_band_description(i, c.name)
    return cls_ds, prob_ds


def _gdal_cache_mb(grid: RasterGrid, tile: int, k: int, prob_path: Path | None) -> int:
    """GDAL block cache (MiB): the output blocks of about two tile rows, at least 64, at most 1024.

    GDAL's default (5 % of RAM) would otherwise fill up with blocks of a large raster and make the
    process's memory grow with the raster size. Output blocks of the rows being written must stay
    cached (else partly written blocks are flushed and compressed again); what is left holds input
    blocks. The caller converts to bytes: ``rasterio.Env`` hands ``GDAL_CACHEMAX`` to
    ``GDALSetCacheMax64``. Before 2026-11-22 the engine passed MiB and so ran with a 64-byte cache;
    cache-size measurements from before then are void.
    """
    out_bytes = 1 + (4 * k if prob_path is not None else 0)
    rows = (tile + 512) * grid.width * 1.5 / 2**20
    return int(min(max(rows * out_bytes, 64), 1024))


@contextlib.contextmanager
def _pool() -> Iterator[cf.ThreadPoolExecutor]:
    pool = cf.ThreadPoolExecutor(max_workers=1)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _predict(m: LoadedModel, x: np.ndarray, tta: bool) -> np.ndarray:
    """Probabilities ``(N, K, t, t)`` for inputs ``(N, [T,] C, t, t)``; TTA averages 8 dihedral transforms."""
    if not tta:
        return m.run(x)
    acc = None
    for k in range(8):
        p = dihedral(m.run(np.ascontiguousarray(dihedral(x, k))), k, inverse=True)
        acc = p.copy() if acc is None else acc + p
    return acc / np.float32(8)
