"""Cloud-aware time series: valid-data masks per date, valid coverage per chip, drop or interpolate.

Yi, Z.-F., Bollinger, D., & Peressutti, D. (2020), "Mapping land use and land cover changes faster and
at scale with deep learning on the cloud" (Development Seed / Sinergise; Deep LULC, eo-learn) build
their training stacks by

1. checking "the ratio of the valid data for each patch and for each time frame" and keeping only
   time frames above a valid-coverage threshold (> 99 % there), then
2. "linear interpolation in the temporal dimension" that fills the gaps and resamples every patch to
   the same dates, with "the cloud mask to tell the interpolating function which values to update"
   (eo-learn ``LinearInterpolationTask``).

This module holds the numpy side (:func:`chip_coverage`, :func:`apply_policy`,
:func:`interpolate_invalid`) and the reading of a per-date mask raster (:class:`DateMasks`), which
may be a valid-data mask (1 = valid, eo-learn ``IS_VALID``), a cloud mask (1 = cloud, ``CLM``) or a
cloud-probability raster (``CLP``, cloudy where ``>= threshold``). Its bands are matched to the
series dates by position (one band per date) or, when its band descriptions hold dates, by date
(e.g. a 68-band eo-learn mask for a 5-date series). Policies:

* ``none``: the masks only set invalid pixels to nodata.
* ``drop``: dates whose valid coverage in a chip is below ``min_valid_coverage`` are set entirely
  to nodata in that chip (the chip keeps its fixed T dates); other invalid pixels become nodata.
* ``interpolate``: as ``drop`` for choosing the anchor observations, then every invalid pixel is
  filled by linear interpolation in time between the previous and next valid observation of that
  pixel (constant before the first / after the last one, as ``numpy.interp``), onto the fixed set
  of series dates. Pixels without any valid observation stay nodata.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from ..errors import InputError
from ..raster.grid import RasterGrid, aligned

Policy = Literal["none", "drop", "interpolate"]
MaskKind = Literal["valid", "cloud", "probability"]
POLICIES: tuple[str, ...] = ("none", "drop", "interpolate")
MASK_KINDS: tuple[str, ...] = ("valid", "cloud", "probability")


def date_offsets(dates: Sequence[str]) -> np.ndarray:
    """Days since the first date ``(T,) float64`` of ISO dates/datetimes; positions 0..T-1 if any is not a date."""
    try:
        ts = [dt.datetime.fromisoformat(str(d).replace("Z", "")) for d in dates]
    except ValueError:
        return np.arange(len(dates), dtype=np.float64)
    return np.array([(t - ts[0]).total_seconds() / 86400.0 for t in ts])


def chip_coverage(valid: np.ndarray) -> np.ndarray:
    """Valid-coverage ratio per date ``(T,) float64`` of a ``(T, H, W)`` bool mask (0..1)."""
    return valid.reshape(valid.shape[0], -1).mean(axis=1) if valid.size else np.zeros(valid.shape[0])


def interpolate_invalid(
    data: np.ndarray,
    valid: np.ndarray,
    times: Sequence[float] | np.ndarray,
    target_times: Sequence[float] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Linear temporal interpolation of invalid pixels (eo-learn ``LinearInterpolationTask``, Yi et al. 2020).

    For every pixel, each target time gets the linear interpolation between the pixel's last valid
    observation at or before it and its first valid observation at or after it; before the first
    (after the last) valid observation the first (last) valid value is repeated. Valid pixels at a
    target time equal to their own time are returned unchanged.

    Args:
        data: ``(T, C, H, W)`` any numeric dtype.
        valid: ``(T, H, W)`` bool, True where the observation is usable.
        times: T increasing acquisition times (e.g. days, :func:`date_offsets`).
        target_times: T' increasing output times; default ``times`` (gap filling on the same dates).

    Returns:
        ``(T', C, H, W)`` float32 and ``(T', H, W)`` bool (False where the pixel has no valid
        observation at all; those values are 0).

    Raises:
        InputError: shapes disagree or ``times`` is not increasing.
    """
    t = np.asarray(times, dtype=np.float64)
    tt = t if target_times is None else np.asarray(target_times, dtype=np.float64)
    n, c, h, w = data.shape
    if valid.shape != (n, h, w) or len(t) != n:
        raise InputError(
            f"Interpolation needs data (T,C,H,W), valid (T,H,W) and T times; got {data.shape}, "
            f"{valid.shape}, {len(t)} times."
        )
    if n > 1 and np.any(np.diff(t) < 0):
        raise InputError("Interpolation times must be in increasing order (dates oldest first).")
    x = data.reshape(n, c, h * w).astype(np.float32)
    v = valid.reshape(n, h * w)
    p = h * w
    idx = np.where(v, np.arange(n)[:, None], -1)
    prev_at = np.maximum.accumulate(idx, axis=0)  # (T, P): last valid index <= i, or -1
    idx2 = np.where(v, np.arange(n)[:, None], n)
    next_at = np.minimum.accumulate(idx2[::-1], axis=0)[::-1]  # first valid index >= i, or n
    # position of each target time among the source times: source index i0 <= target < i0 + 1
    i_hi = np.searchsorted(t, tt, side="left").clip(0, n - 1)  # first source time >= target (clipped)
    i_lo = (np.searchsorted(t, tt, side="right") - 1).clip(0, n - 1)  # last source time <= target
    lo = prev_at[i_lo]  # (T', P) last valid observation at or before the target
    hi = next_at[i_hi]  # first valid observation at or after the target
    has_any = v.any(axis=0)  # (P,)
    lo_ok, hi_ok = lo >= 0, hi < n
    lo_c, hi_c = np.where(lo_ok, lo, 0), np.where(hi_ok, hi, 0)
    t_lo, t_hi = t[lo_c], t[hi_c]
    span = t_hi - t_lo
    frac = np.where(lo_ok & hi_ok & (span > 0), (tt[:, None] - t_lo) / np.where(span > 0, span, 1.0), 0.0)
    frac = np.where(lo_ok, frac, 1.0).astype(np.float32)  # before the first valid: take hi
    cols = np.arange(p)[None, :]
    out = np.empty((len(tt), c, p), np.float32)
    for ci in range(c):
        a = x[:, ci, :][lo_c, cols]
        b = x[:, ci, :][hi_c, cols]
        b = np.where(hi_ok, b, a)  # after the last valid: take lo
        out[:, ci, :] = a + frac * (b - a)
    ok = np.broadcast_to(has_any[None, :], (len(tt), p))
    out *= ok[:, None, :]
    return out.reshape(len(tt), c, h, w), ok.reshape(len(tt), h, w).copy()


@dataclass
class PolicyResult:
    """What :func:`apply_policy` did to one chip.

    Attributes:
        data: ``(T, C, H, W)`` float32 (interpolate) or the input dtype.
        valid: ``(T, H, W)`` bool after the policy.
        coverage: ``(T,)`` valid coverage of the chip before the policy.
        dropped: dates (indexes) whose coverage was below the threshold.
        filled: pixels (summed over dates) filled by interpolation.
    """

    data: np.ndarray
    valid: np.ndarray
    coverage: np.ndarray
    dropped: list[int]
    filled: int = 0


def apply_policy(
    data: np.ndarray,
    valid: np.ndarray,
    times: Sequence[float] | np.ndarray,
    policy: Policy,
    min_valid_coverage: float = 0.0,
) -> PolicyResult:
    """Apply a cloud policy (module docstring) to one chip.

    Args:
        data: ``(T, C, H, W)``; valid: ``(T, H, W)`` bool (nodata and mask combined).
        times: T acquisition times (days).
        policy: ``none``, ``drop`` or ``interpolate``.
        min_valid_coverage: 0..1; dates of the chip with less valid coverage are dropped (``drop``,
            ``interpolate``).

    Raises:
        InputError: unknown policy or threshold outside 0..1.
    """
    if policy not in POLICIES:
        raise InputError(f"Unknown cloud policy {policy!r}; use one of {', '.join(POLICIES)}.")
    if not 0.0 <= min_valid_coverage <= 1.0:
        raise InputError(f"MIN_VALID_COVERAGE is a share between 0 and 1, got {min_valid_coverage}.")
    cov = chip_coverage(valid)
    dropped = [int(i) for i in np.nonzero(cov < min_valid_coverage)[0]] if policy != "none" else []
    v = valid.copy()
    if dropped:
        v[dropped] = False
    if policy != "interpolate":
        return PolicyResult(data, v, cov, dropped)
    out, ok = interpolate_invalid(data, v, times)
    return PolicyResult(out, ok, cov, dropped, int((ok & ~v).sum()))


class DateMasks:
    """A per-date mask raster read window by window on the image grid (nearest-neighbour alignment).

    Args:
        path: raster with one band per date, or with dates in its band descriptions.
        grid: the image grid.
        dates: the series dates (ISO), T of them (one entry for a single image).
        kind: ``valid`` (non-zero = valid), ``cloud`` (non-zero = cloud) or ``probability``
            (cloudy where value >= ``threshold``, in the raster's units).
        threshold: cloud-probability threshold.

    Raises:
        InputError: missing file, unknown kind, or bands that cannot be matched to the dates.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        grid: RasterGrid,
        dates: Sequence[str],
        kind: MaskKind = "valid",
        threshold: float = 0.5,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"Mask raster {self.path} does not exist.")
        if kind not in MASK_KINDS:
            raise InputError(f"Unknown mask type {kind!r}; use one of {', '.join(MASK_KINDS)}.")
        self.kind, self.threshold, self.grid = kind, float(threshold), grid
        with rasterio.open(self.path) as ds:
            count, desc, self.nodata = ds.count, list(ds.descriptions), ds.nodata
        self.bands = match_bands(count, desc, list(dates), self.path.name)

    def __enter__(self) -> DateMasks:
        self._cm = aligned(self.path, self.grid, Resampling.nearest)
        self._ds = self._cm.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._cm.__exit__(*exc)

    def read(self, win: Window) -> np.ndarray:
        """``(T, h, w)`` bool valid mask of the dates in ``win`` (image pixels)."""
        m = self._ds.read(self.bands, window=win)
        bad = np.isnan(m) if m.dtype.kind == "f" else np.zeros(m.shape, bool)
        if self.nodata is not None and not np.isnan(self.nodata):
            bad |= m == self.nodata
        if self.kind == "valid":
            ok = m != 0
        elif self.kind == "cloud":
            ok = m == 0
        else:
            ok = m < self.threshold
        return ok & ~bad


def match_bands(count: int, descriptions: Sequence[str | None], dates: Sequence[str], name: str) -> list[int]:
    """1-based mask band of every date: by position when ``count == len(dates)``, else by the date in the descriptions.

    Raises:
        InputError: neither works (the message lists what the raster holds).
    """
    if count == len(dates):
        return list(range(1, count + 1))
    found: dict[str, int] = {}
    for i, d in enumerate(descriptions, 1):
        if d:
            key = str(d).strip()[:10]
            found.setdefault(key, i)  # two acquisitions on one day: the first one
    missing = [d for d in dates if str(d)[:10] not in found]
    if missing or not dates:
        raise InputError(
            f"The mask raster {name} has {count} bands but the series has {len(dates)} dates, and the dates "
            f"{missing[:5]} are not in its band descriptions. Give a mask raster with one band per input date "
            "(in date order), or one whose band descriptions are the acquisition dates (YYYY-MM-DD...)."
        )
    return [found[str(d)[:10]] for d in dates]


def default_nodata(dtype: str) -> float:
    """A nodata value for imagery that has none but needs one (masked or dropped dates): -9999 for
    floats and signed integers, the largest value of unsigned integers."""
    d = np.dtype(dtype)
    if d.kind == "u":
        return float(np.iinfo(d).max)
    return -9999.0


def to_dtype(data: np.ndarray, dtype: str) -> np.ndarray:
    """Cast interpolated float data back to the chip dtype (rounded and clipped for integers)."""
    d = np.dtype(dtype)
    if d.kind in "iu":
        info = np.iinfo(d)
        return np.clip(np.rint(data), info.min, info.max).astype(d)
    return data.astype(d, copy=False)


#: A date in a file name: ``YYYY-MM-DD`` or ``YYYYMMDD`` not inside a longer number.
_DATE_RE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


def parse_date(name: str) -> str | None:
    """ISO date found in a file name (``2015-07-11`` or ``20150711``), or None."""
    for m in _DATE_RE.finditer(name):
        try:
            return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError:
            continue
    return None
