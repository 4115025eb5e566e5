"""Change detection: post-classification from-to change, change vector analysis, change models.

Counterpart of ArcGIS "Compute Change Raster" (categorical, from-to), the Change Detection Wizard
and "Detect Change Using Deep Learning". Three methods, all streamed window by window:

1. :func:`from_to_change` — two classified rasters -> one code per transition, with names
   ``"forest -> cultivated land"``, a colour table, a QML style and a transition table (pixels,
   m², ha, % of the from-class). The second raster is aligned onto the first's grid (nearest).
2. :func:`change_vector_analysis` — two multispectral rasters, no training: magnitude of the
   standardised band difference (change vector analysis, Malila 1980, "Change vector analysis: an
   approach for detecting forest changes with Landsat", LARS Symposia) thresholded with Otsu's
   method (Otsu 1979, IEEE Trans. SMC 9(1):62-66).
3. :func:`detect_change_with_model` — a two-date change model (card task ``"change"``, dates
   stacked as 2C channels, trained on two-date chips as in seed 004: labels "to class" or
   "no change") run through the same engine as Classify Pixels (:func:`core.inference.classify_raster`).

Never imports torch.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from .. import classes as styles
from ..assessment.metrics import binary_scores, confusion_matrix
from ..assessment.reference import ClassEntry, class_pixel_counts, class_table_for_raster, read_class_table
from ..chips.manifest import ClassInfo
from ..errors import BandMismatchError, InputError
from ..feedback import Feedback, SubFeedback, check_canceled, ensure_feedback
from ..modelcard import DEFAULT_COLORS
from ..preprocessing.normalize import valid_mask
from ..raster.grid import IGNORE_INDEX, RasterGrid, aligned, pixel_area_m2
from ..raster.io import atomic_output, geotiff_profile
from ..raster.tiling import disjoint_windows

#: Output value of "no data" in a from-to raster.
FROM_TO_NODATA = 0
#: Output values of a change-vector-analysis raster.
CVA_NO_CHANGE, CVA_CHANGE, CVA_NODATA = 0, 1, 255
NO_CHANGE_COLOR = "#d9d9d9"

# ------------------------------------------------------------------------------ from-to
@dataclass
class TransitionScheme:
    """The value of each transition in a from-to change raster.

    ``code = i_from * K_to + i_to + 1`` where ``i_from``/``i_to`` are the positions of the class
    values in ``from_classes``/``to_classes`` (sorted by value); 0 is nodata. With
    ``changed_only`` every pixel whose class value did not change gets the single code
    ``no_change_code = K_from * K_to + 1``.

    Attributes:
        from_classes, to_classes: the classes of the first and second date, sorted by value.
        changed_only: see above.
    """

    from_classes: list[ClassEntry]
    to_classes: list[ClassEntry]
    changed_only: bool = False

    @property
    def n_codes(self) -> int:
        """Number of transition codes (K_from * K_to)."""
        return len(self.from_classes) * len(self.to_classes)

    @property
    def no_change_code(self) -> int:
        """The single "no change" value used when ``changed_only``."""
        return self.n_codes + 1

    @property
    def dtype(self) -> str:
        """``uint8`` when every code fits, else ``uint16``."""
        return "uint8" if self.no_change_code <= 255 else "uint16"

    def code(self, from_value: int, to_value: int) -> int:
        """Code of one transition (before ``changed_only`` merging)."""
        fi = [c.value for c in self.from_classes].index(from_value)
        ti = [c.value for c in self.to_classes].index(to_value)
        return fi * len(self.to_classes) + ti + 1

    def entries(self) -> list[ClassInfo]:
        """Every output value with its name and colour (colour of the 'to' class; paler when unchanged)."""
        out = []
        for f in self.from_classes:
            for t in self.to_classes:
                same = f.value == t.value
                if same and self.changed_only:
                    continue
                name = f"{f.name} (no change)" if same else f"{f.name} -> {t.name}"
                out.append(ClassInfo(self.code(f.value, t.value), name, _pale(t.color) if same else t.color))
        if self.changed_only:
            out.append(ClassInfo(self.no_change_code, "no change", NO_CHANGE_COLOR))
        return out

    def lut_codes(self, before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes of two aligned class arrays; returns ``(codes, valid)`` with codes 0 where invalid."""
        fv = np.array([c.value for c in self.from_classes], dtype=np.int64)
        tv = np.array([c.value for c in self.to_classes], dtype=np.int64)
        fi, fok = _index_in(before, fv)
        ti, tok = _index_in(after, tv)
        ok = fok & tok
        codes = np.where(ok, fi * len(tv) + ti + 1, 0)
        if self.changed_only:
            codes = np.where(ok & (before.astype(np.int64) == after.astype(np.int64)), self.no_change_code, codes)
        return codes, ok


def _index_in(values: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each value in the sorted ``table`` and whether it is there."""
    v = values.astype(np.int64, copy=False)
    pos = np.clip(np.searchsorted(table, v), 0, len(table) - 1)
    return pos, table[pos] == v


def _pale(color: str) -> str:
    r, g, b = styles.hex_to_rgb(color)
    return "#{:02x}{:02x}{:02x}".format(*(int(c + 0.6 * (255 - c)) for c in (r, g, b)))


def _resolve_table(spec, raster: str | os.PathLike) -> dict[int, ClassEntry]:
    if spec is None:
        return class_table_for_raster(raster)
    if isinstance(spec, Mapping):
        return {int(k): (v if isinstance(v, ClassEntry) else ClassEntry(int(k), str(v))) for k, v in spec.items()}
    return read_class_table(spec)


def check_class_tables_agree(a: Mapping[int, ClassEntry], b: Mapping[int, ClassEntry]) -> None:
    """Raise when the same class value has different names in the two tables.

    Raises:
        InputError: listing every conflicting value and both names.
    """
    bad = [(v, a[v].name, b[v].name) for v in sorted(set(a) & set(b))
           if a[v].name.strip().lower() != b[v].name.strip().lower()]
    if bad:
        listing = "; ".join(f"{v}: '{x}' vs '{y}'" for v, x, y in bad)
        raise InputError(f"The class tables of the two dates disagree ({listing}). Recode one classification so that "
                         "each value means the same class on both dates, or give one CLASS_TABLE for both.")


def _classes(table: Mapping[int, ClassEntry], present: Sequence[int], excluded: set[int]) -> list[ClassEntry]:
    """Table classes plus values present but missing from the table (named ``class <v>``)."""
    values = sorted((set(table) | set(present)) - excluded)
    return [table.get(v) or ClassEntry(v, f"class {v}", DEFAULT_COLORS[i % len(DEFAULT_COLORS)])
            for i, v in enumerate(values)]


@dataclass
class ChangeResult:
    """What a change function produced.

    Attributes:
        output: the change raster. ``qml``: its style. ``table``: transition table CSV or None.
        magnitude: CVA magnitude raster or None. ``probabilities``: change-model probabilities or None.
        counts: pixels per output value. ``threshold``: CVA threshold used (None otherwise).
        entries: output values with names and colours. ``stats``: free-form figures.
    """

    output: Path
    qml: Path | None = None
    table: Path | None = None
    magnitude: Path | None = None
    probabilities: Path | None = None
    counts: dict[int, int] = field(default_factory=dict)
    threshold: float | None = None
    entries: list[ClassInfo] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def _read_class(ds, window: Window, ignore: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    a = ds.read(1, window=window)
    ok = np.ones(a.shape, dtype=bool)
    if ds.nodata is not None and not np.isnan(ds.nodata):
        ok &= a != ds.nodata
    if np.issubdtype(a.dtype, np.floating):
        ok &= ~np.isnan(a)
    for v in ignore:
        ok &= a != v
    return a, ok


def _expand(win: Window, halo: int, grid: RasterGrid) -> Window:
    c0, r0 = max(0, int(win.col_off) - halo), max(0, int(win.row_off) - halo)
    c1 = min(grid.width, int(win.col_off + win.width) + halo)
    r1 = min(grid.height, int(win.row_off + win.height) + halo)
    return Window(c0, r0, c1 - c0, r1 - r0)


def sieve_changes(changed: np.ndarray, valid: np.ndarray, mmu_px: int) -> np.ndarray:
    """Drop changed patches smaller than ``mmu_px`` pixels (GDAL sieve, 8-connected).

    Args:
        changed: ``(H, W)`` bool, True where the class changed.
        valid: ``(H, W)`` bool, pixels with data on both dates (others take no part).
        mmu_px: minimum mapping unit in pixels; patches of fewer pixels become unchanged.

    Returns:
        ``(H, W)`` bool changed mask; only removals happen (never a new change).
    """
    if mmu_px <= 1 or not changed.any():
        return changed
    from rasterio.features import sieve

    sieved = sieve(changed.astype(np.uint8), size=int(mmu_px), connectivity=8, mask=valid)
    return changed & (sieved == 1)


def from_to_change(before: str | os.PathLike, after: str | os.PathLike, out_path: str | os.PathLike, *,
                   classes_before=None, classes_after=None, changed_only: bool = False, mmu_px: int = 0,
                   transition_table_path: str | os.PathLike | None = None, ignore: Sequence[int] = (IGNORE_INDEX,),
                   window_size: int = 1024, feedback: Feedback | None = None) -> ChangeResult:
    """Post-classification from-to change of two classified rasters (streamed).

    The second raster is read through :func:`core.raster.aligned` onto the first's grid (nearest
    neighbour). Codes follow :class:`TransitionScheme`; a pixel that is nodata (or an ``ignore``
    value) on either date is nodata (0) in the output.

    Minimum mapping unit: changed patches (8-connected) smaller than ``mmu_px`` pixels become
    unchanged (their 'to' class is reset to the 'from' class) via :func:`sieve_changes`. The sieve
    needs whole patches, so each ``window_size`` block is processed with a halo of ``mmu_px`` pixels
    on every side (a patch that reaches beyond the halo spans more than ``mmu_px`` pixels and is
    kept, so the result equals a whole-raster sieve); memory is ``(window_size + 2 mmu_px)²`` pixels
    times a few arrays.

    Args:
        before, after: single-band classified rasters (first and second date).
        out_path: change raster (GeoTIFF uint8, or uint16 when more than 254 codes; nodata 0;
            colour table; ``.qml`` style written beside it).
        classes_before, classes_after: ``{value: ClassEntry}``, a CSV path (``value,name[,color]``) or
            None (the raster's ``.qml``, else the values present named ``class <v>``). Values present
            in a raster but missing from its table are added.
        changed_only: unchanged pixels get one "no change" value (see :class:`TransitionScheme`).
        mmu_px: minimum mapping unit of changes, pixels (0 = none).
        transition_table_path: optional CSV with from, to, pixels, m², ha and % of the from-class.
        ignore: class values treated as nodata on both dates.
        window_size: block edge, pixels.
        feedback: progress, cancel, log.

    Returns:
        :class:`ChangeResult` (counts per code, entries, table).

    Raises:
        InputError: class tables that give one value two names, no valid pixel in common, bad mmu.
        NoOverlapError: the rasters do not overlap. CRSMismatchError: one raster has no CRS.
        CanceledError: canceled (no output left behind).
    """
    fb = ensure_feedback(feedback)
    if mmu_px < 0:
        raise InputError(f"The minimum mapping unit must be >= 0 pixels, got {mmu_px}.")
    t_before = _resolve_table(classes_before, before)
    t_after = _resolve_table(classes_after, after)
    check_class_tables_agree(t_before, t_after)
    grid = RasterGrid.from_path(before)
    fb.info("Pass 1/2: class values present on each date")
    present_b = class_pixel_counts(before, window_size=window_size, feedback=SubFeedback(fb, 0, 10))
    present_a = class_pixel_counts(after, window_size=window_size, feedback=SubFeedback(fb, 10, 20))
    excl = set(int(v) for v in ignore)
    scheme = TransitionScheme(_classes(t_before, list(present_b), excl), _classes(t_after, list(present_a), excl),
                              changed_only)
    if not scheme.from_classes or not scheme.to_classes:
        raise InputError("One of the classified rasters holds no class value (only nodata/ignored values).")
    halo = int(mmu_px) if mmu_px > 1 else 0
    counts = np.zeros(scheme.no_change_code + 1, dtype=np.int64)
    pair_counts = np.zeros(scheme.n_codes + 1, dtype=np.int64)  # true from-to pairs (after the sieve)
    entries = scheme.entries()
    wins = disjoint_windows(grid.width, grid.height, window_size)
    fb.info(f"Pass 2/2: {len(scheme.from_classes)} x {len(scheme.to_classes)} transitions, {len(wins)} blocks"
            + (f", minimum mapping unit {mmu_px} px" if halo else ""))
    out_path = Path(out_path)
    with rasterio.open(before) as bds, aligned(after, grid, Resampling.nearest) as ads, \
            atomic_output(out_path) as tmp:
        prof = geotiff_profile(grid, 1, scheme.dtype, nodata=FROM_TO_NODATA)
        with rasterio.open(tmp, "w", **prof) as out:
            for i, win in enumerate(wins):
                check_canceled(fb)
                big = _expand(win, halo, grid) if halo else win
                b, bok = _read_class(bds, big, ignore)
                a, aok = _read_class(ads, big, ignore)
                b = b.astype(np.int64)
                a = a.astype(np.int64)
                valid = bok & aok
                if halo:
                    changed = valid & (a != b)
                    kept = sieve_changes(changed, valid, mmu_px)
                    a = np.where(changed & ~kept, b, a)  # sieved-out change: back to the 'from' class
                    r0, c0 = int(win.row_off - big.row_off), int(win.col_off - big.col_off)
                    sl = (slice(r0, r0 + int(win.height)), slice(c0, c0 + int(win.width)))
                    a, b, valid = a[sl], b[sl], valid[sl]
                codes, ok = scheme.lut_codes(np.where(valid, b, -1), np.where(valid, a, -1))
                counts += np.bincount(codes[ok].ravel(), minlength=len(counts))
                raw = TransitionScheme(scheme.from_classes, scheme.to_classes, False).lut_codes(b, a)[0]
                pair_counts += np.bincount(raw[ok].ravel(), minlength=len(pair_counts))
                out.write(codes.astype(scheme.dtype), 1, window=win)
                fb.set_progress(20 + 78.0 * (i + 1) / len(wins))
            out.write_colormap(1, {0: (0, 0, 0, 0), **styles.colormap(entries)})
            out.update_tags(1, TRANSITION_CODE="code = index_from * K_to + index_to + 1; 0 = nodata",
                            NO_CHANGE_CODE=str(scheme.no_change_code) if changed_only else "")
    if counts[1:].sum() == 0:
        out_path.unlink(missing_ok=True)
        raise InputError(f"{Path(before).name} and {Path(after).name} have no valid pixel in common (nodata or "
                         "ignored values everywhere they overlap).")
    qml = styles.write_class_qml(out_path.with_suffix(".qml"), entries, nodata=FROM_TO_NODATA)
    table = None
    if transition_table_path:
        table = write_transition_table(transition_table_path, scheme, pair_counts, pixel_area_m2(grid))
    fb.set_progress(100)
    return ChangeResult(output=out_path, qml=qml, table=table, entries=entries,
                        counts={int(v): int(c) for v, c in enumerate(counts) if c and v},
                        stats={"pair_counts": {int(v): int(c) for v, c in enumerate(pair_counts) if c and v},
                               "changed_pixels": _changed(scheme, pair_counts),
                               "no_change_code": scheme.no_change_code if changed_only else None})


def _changed(scheme: TransitionScheme, pair_counts: np.ndarray) -> int:
    """Pixels whose class value differs between the dates."""
    kt = len(scheme.to_classes)
    return int(sum(pair_counts[i * kt + j + 1] for i, f in enumerate(scheme.from_classes)
                   for j, t in enumerate(scheme.to_classes) if f.value != t.value))


def write_transition_table(path: str | os.PathLike, scheme: TransitionScheme, pair_counts: np.ndarray,
                           pixel_m2: float | None) -> Path:
    """Transition matrix as a long CSV, one row per from-to pair with pixels > 0.

    Columns: ``from_value, from_class, to_value, to_class, code, pixels, m2, ha, percent_of_from``
    (``code`` is the all-transitions code; areas empty when the CRS is unknown). ``percent_of_from``
    = pixels / pixels of the from-class with valid data on both dates × 100.
    """
    kt = len(scheme.to_classes)
    from_tot = {f.value: int(pair_counts[1 + i * kt: 1 + (i + 1) * kt].sum()) for i, f in enumerate(scheme.from_classes)}
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["from_value", "from_class", "to_value", "to_class", "code", "pixels", "m2", "ha", "percent_of_from"])
        for i, f in enumerate(scheme.from_classes):
            for j, t in enumerate(scheme.to_classes):
                code = i * kt + j + 1
                n = int(pair_counts[code])
                if not n:
                    continue
                m2 = n * pixel_m2 if pixel_m2 else None
                w.writerow([f.value, f.name, t.value, t.name, code, n, "" if m2 is None else f"{m2:.2f}",
                            "" if m2 is None else f"{m2 / 1e4:.4f}", f"{100.0 * n / from_tot[f.value]:.4f}"])
    return Path(path)


# ---------------------------------------------------------------- change vector analysis
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


def _pair_datasets_check(before: str | os.PathLike, after: str | os.PathLike) -> int:
    with rasterio.open(before) as b, rasterio.open(after) as a:
        if b.count != a.count:
            raise BandMismatchError(f"{Path(before).name} has {b.count} bands and {Path(after).name} {a.count}; both "
                                    "dates need the same bands in the same order.")
        return b.count


def _diff_window(bds, ads, win: Window, bands: list[int]) -> tuple[np.ndarray, np.ndarray]:
    x1 = bds.read(bands, window=win).astype(np.float64)
    x2 = ads.read(bands, window=win).astype(np.float64)
    ok = valid_mask(x1, bds.nodata) & valid_mask(x2, ads.nodata)
    return x2 - x1, ok


def change_vector_analysis(before: str | os.PathLike, after: str | os.PathLike, out_path: str | os.PathLike, *,
                           bands: Sequence[int] | None = None, threshold: float | None = None,
                           magnitude_path: str | os.PathLike | None = None, window_size: int = 1024,
                           bins: int = 4096, feedback: Feedback | None = None) -> ChangeResult:
    """Binary change by change vector analysis (Malila 1980) with an Otsu (1979) threshold.

    For each band b the difference ``d_b = x2_b - x1_b`` is standardised with its mean and standard
    deviation over all valid pixels (removes a global radiometric offset between the dates); the
    change magnitude is ``sqrt(sum_b z_b²) / sqrt(B)`` (unitless, ~1 for an average pixel). Passes
    over windows: (1) difference statistics, (2) magnitude histogram (skipped when ``threshold``
    is given and no magnitude raster is asked for), (3) threshold and write.

    Args:
        before, after: rasters of the two dates with the same bands; ``after`` is aligned onto
            ``before``'s grid (bilinear).
        out_path: uint8 change raster (1 change, 0 no change, 255 nodata; colour table, QML).
        bands: 1-based bands to use (default all).
        threshold: magnitude threshold; None = Otsu on the magnitude histogram.
        magnitude_path: optional float32 magnitude raster (nodata NaN).
        window_size: block edge, pixels.
        bins: histogram bins on ``[0, 8]`` (magnitudes above 8 fall in the last bin).
        feedback: progress, cancel, log.

    Returns:
        :class:`ChangeResult` with ``threshold`` and counts ``{0: unchanged, 1: changed}``.

    Raises:
        BandMismatchError: different band counts, or a band index out of range.
        NoOverlapError: the rasters do not overlap. InputError: no valid pixel.
    """
    fb = ensure_feedback(feedback)
    n = _pair_datasets_check(before, after)
    bands = list(bands) if bands else list(range(1, n + 1))
    if any(b < 1 or b > n for b in bands):
        raise BandMismatchError(f"Band numbers {bands} are out of range 1..{n}.")
    grid = RasterGrid.from_path(before)
    wins = disjoint_windows(grid.width, grid.height, window_size)
    hmax = 8.0
    need_hist = threshold is None
    n_pass = 3 if (need_hist or magnitude_path) else 2
    s = np.zeros(len(bands))
    ss = np.zeros(len(bands))
    cnt = 0
    with rasterio.open(before) as bds, aligned(after, grid, Resampling.bilinear) as ads:
        for i, win in enumerate(wins):
            check_canceled(fb)
            d, ok = _diff_window(bds, ads, win, bands)
            v = d[:, ok]
            s += v.sum(axis=1)
            ss += (v * v).sum(axis=1)
            cnt += v.shape[1]
            fb.set_progress(100.0 / n_pass * (i + 1) / len(wins))
        if cnt == 0:
            raise InputError(f"{Path(before).name} and {Path(after).name} have no valid pixel in common.")
        mean = s / cnt
        std = np.sqrt(np.maximum(ss / cnt - mean**2, 0))
        std = np.where(std > 0, std, 1.0)

        def magnitude(win: Window) -> tuple[np.ndarray, np.ndarray]:
            d, ok = _diff_window(bds, ads, win, bands)
            z = (d - mean[:, None, None]) / std[:, None, None]
            return np.sqrt((z * z).sum(axis=0) / len(bands)), ok

        edges = np.linspace(0, hmax, bins + 1)
        hist = np.zeros(bins, dtype=np.int64)
        mag_ctx = atomic_output(magnitude_path) if magnitude_path else None
        mag_tmp = mag_ctx.__enter__() if mag_ctx else None
        try:
            if n_pass == 3:
                mprof = geotiff_profile(grid, 1, "float32", nodata=float("nan"))
                mds = rasterio.open(mag_tmp, "w", **mprof) if mag_tmp else None
                try:
                    for i, win in enumerate(wins):
                        check_canceled(fb)
                        m, ok = magnitude(win)
                        hist += np.histogram(np.minimum(m[ok], hmax), bins=edges)[0]
                        if mds is not None:
                            mds.write(np.where(ok, m, np.nan).astype(np.float32), 1, window=win)
                        fb.set_progress(100.0 / n_pass * (1 + (i + 1) / len(wins)))
                finally:
                    if mds is not None:
                        mds.close()
            thr = otsu_threshold(hist, edges) if threshold is None else float(threshold)
            fb.info(f"Change threshold on the magnitude: {thr:.4f}" + (" (Otsu)" if threshold is None else ""))
            counts = np.zeros(2, dtype=np.int64)
            out_path = Path(out_path)
            with atomic_output(out_path) as tmp:
                with rasterio.open(tmp, "w", **geotiff_profile(grid, 1, "uint8", nodata=CVA_NODATA)) as out:
                    for i, win in enumerate(wins):
                        check_canceled(fb)
                        m, ok = magnitude(win)
                        ch = m > thr
                        counts += np.bincount(ch[ok].astype(np.int64), minlength=2)
                        out.write(np.where(ok, ch, CVA_NODATA).astype(np.uint8), 1, window=win)
                        fb.set_progress(100.0 / n_pass * (n_pass - 1 + (i + 1) / len(wins)))
                    out.write_colormap(1, {0: (40, 40, 40, 255), 1: (255, 60, 60, 255), 255: (0, 0, 0, 0)})
            if mag_ctx:
                mag_ctx.__exit__(None, None, None)
                mag_ctx = None
        except BaseException as e:
            if mag_ctx:
                mag_ctx.__exit__(type(e), e, e.__traceback__)
            raise
    entries = [ClassInfo(CVA_NO_CHANGE, "no change", "#282828"), ClassInfo(CVA_CHANGE, "change", "#ff3c3c")]
    qml = styles.write_class_qml(out_path.with_suffix(".qml"), entries, nodata=CVA_NODATA)
    return ChangeResult(output=out_path, qml=qml, magnitude=Path(magnitude_path) if magnitude_path else None,
                        counts={0: int(counts[0]), 1: int(counts[1])}, threshold=thr, entries=entries,
                        stats={"diff_mean": mean.tolist(), "diff_std": std.tolist(), "bands": bands})


# ------------------------------------------------------------------------- change model
def detect_change_with_model(before: str | os.PathLike, after: str | os.PathLike, model: str | os.PathLike,
                             out_path: str | os.PathLike, *, prob_path: str | os.PathLike | None = None,
                             table_path: str | os.PathLike | None = None, **inference_kwargs: Any):
    """Run a two-date change model through :func:`core.inference.classify_raster`.

    The model card's task must be ``"change"`` (input = date 1 bands then date 2 bands, 2C
    channels); its classes are e.g. ``"no change"`` / ``"change"`` or seed 004's ``"to forest"`` ...
    ``"no change"``. Both dates must be on one grid (same as Classify Pixels with several inputs).

    Args:
        before, after: rasters of the two dates. model: ``.onnx`` change model.
        out_path, prob_path, table_path: class raster, optional probabilities, optional area CSV.
        **inference_kwargs: ``tile_size``, ``overlap``, ``batch_size``, ``device``, ``blending``,
            ``feedback``... passed to :func:`core.inference.classify_raster`.

    Returns:
        The :class:`core.inference.InferenceResult`.

    Raises:
        InputError: the model expects a single date (its task is not ``"change"``).
        BandMismatchError: the two dates have different band counts.
        ModelFileError, GridMismatchError: as :func:`core.inference.classify_raster`.
    """
    from ..inference.engine import classify_raster
    from ..modelcard import read_card

    card = read_card(model)
    if card.task != "change":
        raise InputError(f"The model {Path(model).name} expects a single date (task '{card.task}'), not a pair of "
                         "rasters. Use a change model trained on two-date chips, or classify each date with Classify "
                         "Pixels and use the post-classification mode.")
    _pair_datasets_check(before, after)
    return classify_raster([before, after], model, out_path, prob_path=prob_path, area_table_path=table_path,
                           **inference_kwargs)


# ------------------------------------------------------------------------------ scoring
def binary_change_scores(pred_path: str | os.PathLike, mask_path: str | os.PathLike, *,
                         no_change_values: Sequence[int] = (0,), mask_change_values: Sequence[int] = (1,),
                         window_size: int = 1024) -> dict[str, Any]:
    """Precision, recall and F1 of "change" of a change raster against a binary change mask.

    Any valid predicted value not in ``no_change_values`` counts as change (so multi-class "to
    class" outputs are scored too). The mask is aligned onto the prediction's grid (nearest).

    Returns:
        ``{"precision", "recall", "f1", "overall_accuracy", "kappa", "matrix"}`` (None where undefined);
        matrix rows = reference [no change, change], columns = predicted.
    """
    grid = RasterGrid.from_path(pred_path)
    cm = np.zeros((2, 2), dtype=np.int64)
    nc = np.asarray(list(no_change_values))
    mc = np.asarray(list(mask_change_values))
    with rasterio.open(pred_path) as pds, aligned(mask_path, grid, Resampling.nearest) as mds:
        for win in disjoint_windows(grid.width, grid.height, window_size):
            p, pok = _read_class(pds, win, ())
            m, mok = _read_class(mds, win, ())
            ok = pok & mok
            cm += confusion_matrix(np.isin(m, mc).astype(np.int64)[ok], (~np.isin(p, nc)).astype(np.int64)[ok], [0, 1],
                                   ignore=())
    out = binary_scores(cm, positive=1)
    out["matrix"] = cm.tolist()
    return out
