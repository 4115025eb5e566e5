"""Post-classification from-to change of two classified rasters (Detect Change, method 0).

Counterpart of ArcGIS "Compute Change Raster" (categorical, from-to) and the Change Detection Wizard:
two classified rasters -> one code per transition (:class:`core.change.transitions.TransitionScheme`), with names
``"forest -> cultivated land"``, a colour table, a QML style and a transition table (pixels, m², ha,
% of the from-class). The second raster is aligned onto the first's grid (nearest neighbour). Streamed
window by window; a minimum mapping unit removes small changed patches (:func:`sieve_changes`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
import rasterio
from rasterio.enums import Resampling

from ..assessment.reference import class_pixel_counts, read_class_window
from ..classes import (
    IGNORE_INDEX,
    ClassInfo,
    class_table_for_raster,
    colormap,
    palette_color,
    read_class_table,
    write_class_qml,
)
from ..errors import InputError
from ..feedback import Feedback, SubFeedback, check_canceled, ensure_feedback
from ..raster.grid import RasterGrid, aligned, pixel_area_m2
from ..raster.io import atomic_output, geotiff_profile
from ..raster.polygons import PolygonOptions
from ..raster.tiling import disjoint_windows, expand_window
from .result import ChangeResult, change_polygons, run_tags
from .transitions import TransitionScheme, changed_pixels, write_transition_table

#: Output value of "no data" in a from-to raster.
FROM_TO_NODATA = 0
#: A class table given to :class:`FromToOptions`: ``{value: ClassInfo or name}``, a CSV path, or None
#: (the raster's ``.qml``, else the values present named ``class <v>``).
ClassTableSpec = Union[Mapping[int, Union[ClassInfo, str]], str, os.PathLike, None]


def _resolve_table(spec, raster: str | os.PathLike) -> dict[int, ClassInfo]:
    if spec is None:
        return class_table_for_raster(raster)
    if isinstance(spec, Mapping):
        return {int(k): (v if isinstance(v, ClassInfo) else ClassInfo(int(k), str(v))) for k, v in spec.items()}
    return read_class_table(spec)


def check_class_tables_agree(a: Mapping[int, ClassInfo], b: Mapping[int, ClassInfo]) -> None:
    """Raise when the same class value has different names in the two tables.

    Raises:
        InputError: listing every conflicting value and both names.
    """
    bad = [
        (v, a[v].name, b[v].name)
        for v in sorted(set(a) & set(b))
        if a[v].name.strip().lower() != b[v].name.strip().lower()
    ]
    if bad:
        listing = "; ".join(f"{v}: '{x}' vs '{y}'" for v, x, y in bad)
        raise InputError(
            f"The class tables of the two dates disagree ({listing}). Recode one classification so that "
            "each value means the same class on both dates, or give one CLASS_TABLE for both."
        )


def _classes(table: Mapping[int, ClassInfo], present: Sequence[int], excluded: set[int]) -> list[ClassInfo]:
    """Table classes plus values present but missing from the table (named ``class <v>``)."""
    values = sorted((set(table) | set(present)) - excluded)
    return [table.get(v) or ClassInfo(v, f"class {v}", palette_color(i)) for i, v in enumerate(values)]


@dataclass(frozen=True)
class FromToOptions:
    """What :func:`from_to_change` compares and writes.

    Attributes:
        before, after: single-band classified rasters (first and second date).
        output: change raster (GeoTIFF uint8, or uint16 when more than 254 codes; nodata 0; colour
            table; ``.qml`` style written beside it).
        classes_before, classes_after: see :data:`ClassTableSpec`. Values present in a raster but
            missing from its table are added.
        changed_only: unchanged pixels get one "no change" value (see :class:`TransitionScheme`).
        mmu_px: minimum mapping unit of changes, pixels (0 = none).
        transition_table_path: optional CSV with from, to, pixels, m², ha and % of the from-class.
        ignore: class values treated as nodata on both dates.
        window_size: block edge, pixels.
        polygons_path: optional GeoPackage of change polygons (one per connected patch of one code).
        polygons: how they are made (minimum area, simplification; :class:`PolygonOptions`).
    """

    before: str | os.PathLike
    after: str | os.PathLike
    output: str | os.PathLike
    classes_before: ClassTableSpec = None
    classes_after: ClassTableSpec = None
    changed_only: bool = False
    mmu_px: int = 0
    transition_table_path: str | os.PathLike | None = None
    ignore: tuple[int, ...] = (IGNORE_INDEX,)
    window_size: int = 1024
    polygons_path: str | os.PathLike | None = None
    polygons: PolygonOptions = field(default_factory=PolygonOptions)


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


def from_to_change(options: FromToOptions, feedback: Feedback | None = None) -> ChangeResult:
    """Post-classification from-to change of two classified rasters (streamed).

    The second raster is read through :func:`core.raster.grid.aligned` onto the first's grid (nearest
    neighbour). Codes follow :class:`TransitionScheme`; a pixel that is nodata (or an ``ignore``
    value) on either date is nodata (0) in the output. Pass 1 finds the class values of each date
    (:func:`transition_scheme`), pass 2 writes the codes (:func:`_write_codes`).

    Minimum mapping unit: changed patches (8-connected) smaller than ``mmu_px`` pixels become
    unchanged (their 'to' class is reset to the 'from' class) via :func:`sieve_changes`. The sieve
    needs whole patches, so each ``window_size`` block is processed with a halo of ``mmu_px`` pixels
    on every side (a patch that reaches beyond the halo spans more than ``mmu_px`` pixels and is
    kept, so the result equals a whole-raster sieve); memory is ``(window_size + 2 mmu_px)²`` pixels
    times a few arrays.

    Returns:
        :class:`ChangeResult` (counts per code, entries, table); ``stats`` holds ``pair_counts`` (per
        all-transitions code), ``changed_pixels`` and ``no_change_code`` (None unless ``changed_only``).

    Raises:
        InputError: class tables that give one value two names, no valid pixel in common, bad mmu.
        NoOverlapError: the rasters do not overlap. CRSMismatchError: one raster has no CRS.
        CanceledError: canceled (no output left behind).
    """
    fb = ensure_feedback(feedback)
    scheme = transition_scheme(options, fb)
    grid = RasterGrid.from_path(options.before)
    tags = run_tags("from_to_change", options)
    counts, pair_counts = _write_codes(options, scheme, grid, fb, tags)
    out_path = Path(options.output)
    if counts[1:].sum() == 0:
        out_path.unlink(missing_ok=True)
        raise InputError(
            f"{Path(options.before).name} and {Path(options.after).name} have no valid pixel in common "
            "(nodata or ignored values everywhere they overlap)."
        )
    entries = scheme.entries()
    qml = write_class_qml(out_path.with_suffix(".qml"), entries, nodata=FROM_TO_NODATA)
    table = None
    if options.transition_table_path:
        table = write_transition_table(options.transition_table_path, scheme, pair_counts, pixel_area_m2(grid))
    polygons = change_polygons(options, entries, tags, fb)
    fb.set_progress(100)
    return ChangeResult(
        output=out_path,
        qml=qml,
        table=table,
        entries=entries,
        counts={int(v): int(c) for v, c in enumerate(counts) if c and v},
        stats={
            "pair_counts": {int(v): int(c) for v, c in enumerate(pair_counts) if c and v},
            "changed_pixels": changed_pixels(scheme, pair_counts),
            "no_change_code": scheme.no_change_code if options.changed_only else None,
        },
        polygons=polygons,
    )


def transition_scheme(options: FromToOptions, feedback: Feedback | None = None) -> TransitionScheme:
    """Pass 1: the classes of both dates (tables plus the values present), progress 0-20 %.

    Raises:
        InputError: a negative mmu, tables that disagree, or a raster with no class value.
    """
    fb = ensure_feedback(feedback)
    if options.mmu_px < 0:
        raise InputError(f"The minimum mapping unit must be >= 0 pixels, got {options.mmu_px}.")
    t_before = _resolve_table(options.classes_before, options.before)
    t_after = _resolve_table(options.classes_after, options.after)
    check_class_tables_agree(t_before, t_after)
    fb.info("Pass 1/2: class values present on each date")
    w = options.window_size
    present_b = class_pixel_counts(options.before, window_size=w, feedback=SubFeedback(fb, 0, 10))
    present_a = class_pixel_counts(options.after, window_size=w, feedback=SubFeedback(fb, 10, 20))
    excl = set(int(v) for v in options.ignore)
    scheme = TransitionScheme(
        _classes(t_before, list(present_b), excl), _classes(t_after, list(present_a), excl), options.changed_only
    )
    if not scheme.from_classes or not scheme.to_classes:
        raise InputError("One of the classified rasters holds no class value (only nodata/ignored values).")
    return scheme


def _write_codes(
    o: FromToOptions, scheme: TransitionScheme, grid: RasterGrid, fb: Feedback, tags: dict[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2: write the code raster (progress 20-98 %).

    Returns:
        ``(counts, pair_counts)``: pixels per output code, and per all-transitions code (true from-to
        pairs after the sieve, also when ``changed_only`` merges the unchanged ones).
    """
    halo = int(o.mmu_px) if o.mmu_px > 1 else 0
    counts = np.zeros(scheme.no_change_code + 1, dtype=np.int64)
    pair_counts = np.zeros(scheme.n_codes + 1, dtype=np.int64)
    every_pair = TransitionScheme(scheme.from_classes, scheme.to_classes, False)
    wins = disjoint_windows(grid.width, grid.height, o.window_size)
    fb.info(
        f"Pass 2/2: {len(scheme.from_classes)} x {len(scheme.to_classes)} transitions, {len(wins)} blocks"
        + (f", minimum mapping unit {o.mmu_px} px" if halo else "")
    )
    profile = geotiff_profile(grid, 1, scheme.dtype, nodata=FROM_TO_NODATA)
    with (
        rasterio.open(o.before) as bds,
        aligned(o.after, grid, Resampling.nearest) as ads,
        atomic_output(o.output) as tmp,
        rasterio.open(tmp, "w", **profile) as out,
    ):
        for i, win in enumerate(wins):
            check_canceled(fb)
            b, a, valid = _read_pair(bds, ads, win, halo, grid, o)
            codes, ok = scheme.lut_codes(np.where(valid, b, -1), np.where(valid, a, -1))
            counts += np.bincount(codes[ok].ravel(), minlength=len(counts))
            pair_counts += np.bincount(every_pair.lut_codes(b, a)[0][ok].ravel(), minlength=len(pair_counts))
            out.write(codes.astype(scheme.dtype), 1, window=win)
            fb.set_progress(20 + 78.0 * (i + 1) / len(wins))
        out.write_colormap(1, {0: (0, 0, 0, 0), **colormap(scheme.entries())})
        out.update_tags(
            1,
            TRANSITION_CODE="code = index_from * K_to + index_to + 1; 0 = nodata",
            NO_CHANGE_CODE=str(scheme.no_change_code) if o.changed_only else "",
        )
        out.update_tags(**tags)
    return counts, pair_counts


def _read_pair(bds, ads, win, halo: int, grid: RasterGrid, o: FromToOptions) -> tuple[np.ndarray, ...]:
    """Both dates' classes in ``win`` (int64) and where both are valid, after the minimum-mapping-unit sieve.

    With a ``halo`` the window is read with that many pixels more on each side (clipped to the
    raster), sieved, and cropped back to ``win``.
    """
    big = expand_window(win, halo, grid.width, grid.height) if halo else win
    b, bok = read_class_window(bds, big, o.ignore)
    a, aok = read_class_window(ads, big, o.ignore)
    b, a = b.astype(np.int64), a.astype(np.int64)
    valid = bok & aok
    if not halo:
        return b, a, valid
    changed = valid & (a != b)
    kept = sieve_changes(changed, valid, o.mmu_px)
    a = np.where(changed & ~kept, b, a)  # sieved-out change: back to the 'from' class
    r0, c0 = int(win.row_off - big.row_off), int(win.col_off - big.col_off)
    inner = (slice(r0, r0 + int(win.height)), slice(c0, c0 + int(win.width)))
    return b[inner], a[inner], valid[inner]
