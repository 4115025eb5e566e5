"""Change vector analysis of two multispectral rasters (Detect Change, method 2; no training).

The change magnitude is the length of the standardised band-difference vector (Malila, W. A. (1980),
"Change vector analysis: an approach for detecting forest changes with Landsat", Proceedings of the
LARS Symposia, paper 385), thresholded with Otsu's method (Otsu, N. (1979), "A threshold selection
method from gray-level histograms", IEEE Transactions on Systems, Man, and Cybernetics 9(1):62-66,
doi:10.1109/TSMC.1979.4310076). Streamed window by window in two or three passes over the rasters.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from ..classes import ClassInfo, write_class_qml
from ..errors import BandMismatchError, InputError
from ..feedback import Feedback, SubFeedback, check_canceled, ensure_feedback
from ..preprocessing.normalize import valid_mask
from ..raster.grid import RasterGrid, aligned
from ..raster.io import atomic_output, geotiff_profile
from ..raster.polygons import PolygonOptions
from ..raster.tiling import disjoint_windows
from .result import ChangeResult, change_polygons, run_tags

#: Output values of a change-vector-analysis raster.
CVA_NO_CHANGE, CVA_CHANGE, CVA_NODATA = 0, 1, 255
#: Upper edge of the magnitude histogram; larger magnitudes fall in the last bin.
MAGNITUDE_MAX = 8.0
_COLORMAP = {CVA_NO_CHANGE: (40, 40, 40, 255), CVA_CHANGE: (255, 60, 60, 255), CVA_NODATA: (0, 0, 0, 0)}


@dataclass(frozen=True)
class CvaOptions:
    """What :func:`change_vector_analysis` compares and writes.

    Attributes:
        before, after: rasters of the two dates with the same bands; ``after`` is aligned onto
            ``before``'s grid (bilinear).
        output: uint8 change raster (1 change, 0 no change, 255 nodata; colour table, QML).
        bands: 1-based bands to use (None = all).
        threshold: magnitude threshold; None = Otsu on the magnitude histogram.
        magnitude_path: optional float32 magnitude raster (nodata NaN).
        window_size: block edge, pixels.
        bins: histogram bins on ``[0, MAGNITUDE_MAX]``.
        polygons_path: optional GeoPackage of change / no-change polygons. polygons: how they are made.
    """

    before: str | os.PathLike
    after: str | os.PathLike
    output: str | os.PathLike
    bands: tuple[int, ...] | None = None
    threshold: float | None = None
    magnitude_path: str | os.PathLike | None = None
    window_size: int = 1024
    bins: int = 4096
    polygons_path: str | os.PathLike | None = None
    polygons: PolygonOptions = field(default_factory=PolygonOptions)


def otsu_threshold(hist: np.ndarray, edges: np.ndarray) -> float:
    """Otsu's threshold (Otsu 1979) of a histogram: maximises the between-class variance.

    Args:
        hist: ``(B,)`` counts. edges: ``(B + 1,)`` bin edges.

    Returns:
        The upper edge of the last bin of the lower class (values > threshold are "high").

    Raises:
        InputError: an empty histogram.
    """
    hist = np.asarray(hist, dtype=np.float64)
    if hist.sum() <= 0:
        raise InputError("Cannot compute an Otsu threshold: no valid pixel.")
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = hist.sum() - w0
    m0 = np.cumsum(hist * centers)
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 / hist.sum() - m0) ** 2 / (w0 * w1)
    between = np.where((w0 > 0) & (w1 > 0), between, -1)
    return float(edges[int(np.argmax(between)) + 1])


def pair_band_count(before: str | os.PathLike, after: str | os.PathLike) -> int:
    """Bands of each date of an image pair.

    Raises:
        BandMismatchError: the two dates have different band counts.
    """
    with rasterio.open(before) as b, rasterio.open(after) as a:
        if b.count != a.count:
            raise BandMismatchError(
                f"{Path(before).name} has {b.count} bands and {Path(after).name} {a.count}; both "
                "dates need the same bands in the same order."
            )
        return b.count


class _ChangeVectors:
    """Band differences ``x2 - x1`` of an aligned pair on ``grid``, and their standardised magnitude per window
    (``windows``: the disjoint windows every pass visits)."""

    def __init__(self, before_ds, after_ds, bands: list[int], grid: RasterGrid, windows: list[Window]) -> None:
        self.before_ds, self.after_ds, self.bands = before_ds, after_ds, bands
        self.grid, self.windows = grid, windows
        self.mean = np.zeros(len(bands))
        self.std = np.ones(len(bands))

    def difference(self, win: Window) -> tuple[np.ndarray, np.ndarray]:
        """``(B, H, W)`` float64 differences and the ``(H, W)`` pixels valid on both dates."""
        x1 = self.before_ds.read(self.bands, window=win).astype(np.float64)
        x2 = self.after_ds.read(self.bands, window=win).astype(np.float64)
        return x2 - x1, valid_mask(x1, self.before_ds.nodata) & valid_mask(x2, self.after_ds.nodata)

    def magnitude(self, win: Window) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W)`` magnitude ``sqrt(sum_b z_b²) / sqrt(B)`` and the valid pixels."""
        d, ok = self.difference(win)
        z = (d - self.mean[:, None, None]) / self.std[:, None, None]
        return np.sqrt((z * z).sum(axis=0) / len(self.bands)), ok


def change_vector_analysis(options: CvaOptions, feedback: Feedback | None = None) -> ChangeResult:
    """Binary change by change vector analysis (Malila 1980) with an Otsu (1979) threshold.

    For each band b the difference ``d_b = x2_b - x1_b`` is standardised with its mean and standard
    deviation over all valid pixels (removes a global radiometric offset between the dates); the
    change magnitude is ``sqrt(sum_b z_b²) / sqrt(B)`` (unitless, ~1 for an average pixel). Passes
    over windows: (1) difference statistics, (2) magnitude histogram and magnitude raster (skipped
    when ``threshold`` is given and no magnitude raster is asked for), (3) threshold and write.

    Returns:
        :class:`ChangeResult` with ``threshold``, counts ``{0: unchanged, 1: changed}`` and ``stats``
        ``{"diff_mean", "diff_std", "bands"}``.

    Raises:
        BandMismatchError: different band counts, or a band index out of range.
        NoOverlapError: the rasters do not overlap. InputError: no valid pixel.
        CanceledError: canceled (no output left behind).
    """
    o = options
    fb = ensure_feedback(feedback)
    n = pair_band_count(o.before, o.after)
    bands = list(o.bands) if o.bands else list(range(1, n + 1))
    if any(b < 1 or b > n for b in bands):
        raise BandMismatchError(f"Band numbers {bands} are out of range 1..{n}.")
    grid = RasterGrid.from_path(o.before)
    wins = disjoint_windows(grid.width, grid.height, o.window_size)
    n_pass = 3 if (o.threshold is None or o.magnitude_path) else 2

    def passing(p: int) -> SubFeedback:
        return SubFeedback(fb, 100.0 * p / n_pass, 100.0 * (p + 1) / n_pass)

    with ExitStack() as stack:
        vectors = _ChangeVectors(
            stack.enter_context(rasterio.open(o.before)),
            stack.enter_context(aligned(o.after, grid, Resampling.bilinear)),
            bands,
            grid,
            wins,
        )
        _standardise(vectors, o, passing(0))
        mag_tmp = stack.enter_context(atomic_output(o.magnitude_path)) if o.magnitude_path else None
        tags = run_tags("change_vector_analysis", o)
        histogram = _magnitude_histogram(vectors, o.bins, mag_tmp, passing(1), tags) if n_pass == 3 else None
        thr = otsu_threshold(*histogram) if o.threshold is None else float(o.threshold)
        fb.info(f"Change threshold on the magnitude: {thr:.4f}" + (" (Otsu)" if o.threshold is None else ""))
        counts = _write_change(vectors, thr, o.output, passing(n_pass - 1), tags)
    out_path = Path(o.output)
    entries = [ClassInfo(CVA_NO_CHANGE, "no change", "#282828"), ClassInfo(CVA_CHANGE, "change", "#ff3c3c")]
    qml = write_class_qml(out_path.with_suffix(".qml"), entries, nodata=CVA_NODATA)
    polygons = change_polygons(o, entries, tags, fb)
    return ChangeResult(
        output=out_path,
        qml=qml,
        magnitude=Path(o.magnitude_path) if o.magnitude_path else None,
        counts={0: int(counts[0]), 1: int(counts[1])},
        threshold=thr,
        entries=entries,
        stats={"diff_mean": vectors.mean.tolist(), "diff_std": vectors.std.tolist(), "bands": bands},
        polygons=polygons,
    )


def _standardise(vectors: _ChangeVectors, o: CvaOptions, fb: Feedback) -> None:
    """Pass 1: mean and standard deviation of each band difference over the valid pixels (std 0 -> 1).

    Raises:
        InputError: no pixel valid on both dates.
    """
    s = np.zeros(len(vectors.bands))
    ss = np.zeros(len(vectors.bands))
    cnt, wins = 0, vectors.windows
    for i, win in enumerate(wins):
        check_canceled(fb)
        d, ok = vectors.difference(win)
        v = d[:, ok]
        s += v.sum(axis=1)
        ss += (v * v).sum(axis=1)
        cnt += v.shape[1]
        fb.set_progress(100.0 * (i + 1) / len(wins))
    if cnt == 0:
        raise InputError(f"{Path(o.before).name} and {Path(o.after).name} have no valid pixel in common.")
    vectors.mean = s / cnt
    std = np.sqrt(np.maximum(ss / cnt - vectors.mean**2, 0))
    vectors.std = np.where(std > 0, std, 1.0)


def _magnitude_histogram(
    vectors: _ChangeVectors, bins: int, magnitude_path: Path | None, fb: Feedback, tags: dict[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2: ``(counts, edges)`` of the magnitudes on ``[0, MAGNITUDE_MAX]``; writes the magnitude raster
    (float32, nodata NaN) to ``magnitude_path`` when given."""
    edges = np.linspace(0, MAGNITUDE_MAX, bins + 1)
    hist = np.zeros(bins, dtype=np.int64)
    grid, wins = vectors.grid, vectors.windows
    with ExitStack() as stack:
        profile = geotiff_profile(grid, 1, "float32", nodata=float("nan"))
        mds = stack.enter_context(rasterio.open(magnitude_path, "w", **profile)) if magnitude_path else None
        if mds is not None:
            mds.update_tags(**tags)
        for i, win in enumerate(wins):
            check_canceled(fb)
            m, ok = vectors.magnitude(win)
            hist += np.histogram(np.minimum(m[ok], MAGNITUDE_MAX), bins=edges)[0]
            if mds is not None:
                mds.write(np.where(ok, m, np.nan).astype(np.float32), 1, window=win)
            fb.set_progress(100.0 * (i + 1) / len(wins))
    return hist, edges


def _write_change(
    vectors: _ChangeVectors, thr: float, out_path: str | os.PathLike, fb: Feedback, tags: dict[str, str]
) -> np.ndarray:
    """Last pass: the change raster ``magnitude > thr``; returns ``[unchanged, changed]`` pixel counts."""
    counts = np.zeros(2, dtype=np.int64)
    grid, wins = vectors.grid, vectors.windows
    profile = geotiff_profile(grid, 1, "uint8", nodata=CVA_NODATA)
    with atomic_output(out_path) as tmp, rasterio.open(tmp, "w", **profile) as out:
        for i, win in enumerate(wins):
            check_canceled(fb)
            m, ok = vectors.magnitude(win)
            ch = m > thr
            counts += np.bincount(ch[ok].astype(np.int64), minlength=2)
            out.write(np.where(ok, ch, CVA_NODATA).astype(np.uint8), 1, window=win)
            fb.set_progress(100.0 * (i + 1) / len(wins))
        out.write_colormap(1, _COLORMAP)
        out.update_tags(**tags)
    return counts
