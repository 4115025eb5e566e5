"""Reading a reference onto the grid of a classified raster, for Compute Accuracy.

The reference can be:

(a) a classified raster on any grid: aligned onto the classified grid with nearest neighbour
    (:func:`accumulate_confusion`);
(b) polygons with an integer class field: reprojected (geopandas) to the classified CRS and
    rasterized window by window onto the classified grid (pixel centre inside, later features win;
    :func:`polygon_reference`);
(c) points with an integer class field: reprojected and compared with the classified pixel under
    each point (:func:`point_pairs`). A point layer written by
    :func:`core.assessment.sampling.create_accuracy_points` records its sampling design in
    :data:`SAMPLING_FIELD`.

Every reader streams the classified raster in disjoint windows and returns a
:class:`core.assessment.metrics.PairCounts`; the scores come from :mod:`core.assessment.metrics`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Literal, Union

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from ..chips.labels import is_raster
from ..classes import IGNORE_INDEX
from ..errors import InputError, NoOverlapError
from ..feedback import Feedback, check_canceled, ensure_feedback
from ..raster.grid import RasterGrid, aligned
from ..raster.tiling import disjoint_windows
from .metrics import PairCounts

#: Field names of an assessment point layer written by :func:`core.assessment.sampling.create_accuracy_points`.
PREDICTED_FIELD = "predicted"
REFERENCE_FIELD = "reference"
SAMPLING_FIELD = "sampling"

#: A reference given to :func:`accumulate_confusion`: a raster path, or a function returning the
#: ``(H, W)`` reference values of a window of the classified grid (e.g. rasterized polygons).
ReferenceSource = Union[str, os.PathLike, Callable[[Window, RasterGrid], np.ndarray]]
#: What a reference dataset holds (:func:`reference_kind`).
ReferenceKind = Literal["raster", "polygons", "points"]


# ------------------------------------------------------------------------------ references
def read_class_window(ds, window: Window, ignore: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """First band of ``window`` and its validity: not nodata, not NaN, not one of ``ignore``.

    Returns:
        ``(values, valid)``, both ``(H, W)``; values in the band's dtype, valid bool.
    """
    a = ds.read(1, window=window)
    ok = np.ones(a.shape, dtype=bool)
    if np.issubdtype(a.dtype, np.floating):
        ok &= ~np.isnan(a)
    if ds.nodata is not None and not np.isnan(ds.nodata):
        ok &= a != ds.nodata
    for v in ignore:
        ok &= a != v
    return a, ok


def reference_kind(reference: str | os.PathLike, layer: str | None = None) -> ReferenceKind:
    """``"raster"``, ``"points"`` (every geometry of the first 50 features a point) or ``"polygons"``."""
    if is_raster(reference):
        return "raster"
    import geopandas as gpd

    head = (
        gpd.read_file(reference, layer=layer, rows=slice(0, 50))
        if layer
        else gpd.read_file(reference, rows=slice(0, 50))
    )
    gtypes = set(head.geometry.geom_type.dropna())
    return "points" if gtypes and gtypes <= {"Point", "MultiPoint"} else "polygons"


def accumulate_confusion(
    pred_path: str | os.PathLike,
    reference: ReferenceSource,
    *,
    ignore: Sequence[int] = (IGNORE_INDEX,),
    window_size: int = 1024,
    feedback: Feedback | None = None,
) -> PairCounts:
    """Count (reference, predicted) pairs window by window, in bounded memory.

    Reads the classified raster in disjoint ``window_size`` windows (:func:`disjoint_windows`);
    a reference raster on any grid is read through :func:`core.raster.grid.aligned` (nearest
    neighbour) so that its windows match; a callable reference is asked for each window.

    Args:
        pred_path: single-band classified raster (its nodata is ignored).
        reference: reference raster path (nodata ignored), or ``f(window, grid) -> (H, W)`` array.
        ignore: values ignored on either side in addition to each raster's nodata.
        window_size: window edge in pixels; memory is a few arrays of ``window_size**2`` int64.
        feedback: progress and cancel.

    Returns:
        The pair counter; ``.matrix(classes)`` gives the confusion matrix.

    Raises:
        NoOverlapError: the reference raster does not overlap the classification.
        CanceledError: canceled through ``feedback``.
    """
    fb = ensure_feedback(feedback)
    counts = PairCounts()
    grid = RasterGrid.from_path(pred_path)
    windows = disjoint_windows(grid.width, grid.height, window_size)
    ignore_arr = np.asarray(list(ignore), dtype=np.float64)
    with ExitStack() as stack:
        pds = stack.enter_context(rasterio.open(pred_path))
        rds = None if callable(reference) else stack.enter_context(aligned(reference, grid, Resampling.nearest))
        for i, win in enumerate(windows):
            check_canceled(fb)
            pred, ok = read_class_window(pds, win)
            if rds is not None:
                ref, rok = read_class_window(rds, win)
                ok &= rok
            else:
                ref = np.asarray(reference(win, grid))
            if ignore_arr.size:
                ok &= ~np.isin(pred, ignore_arr) & ~np.isin(ref, ignore_arr)
            counts.add(ref[ok], pred[ok])
            fb.set_progress(100.0 * (i + 1) / len(windows))
    return counts


def _read_vector(path: str | os.PathLike, field: str | None, grid: RasterGrid, layer: str | None = None):
    """Read a vector layer, check the class field, reproject to the grid's CRS, drop empty rows."""
    import geopandas as gpd

    try:
        gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except Exception as e:  # pyogrio raises its own DataSourceError
        raise InputError(f"Cannot read the reference layer {path}: {e}") from e
    fields = [c for c in gdf.columns if c != gdf.geometry.name]
    if not field:
        raise InputError(f"Give the reference class field of {Path(path).name}; available fields: {', '.join(fields)}.")
    if field not in gdf.columns:
        raise InputError(
            f"The reference layer {Path(path).name} has no field '{field}'. Available fields: {', '.join(fields)}."
        )
    if gdf.crs is None:
        raise InputError(
            f"The reference layer {Path(path).name} has no CRS; assign one (Vector > Data Management > Assign Projection)."
        )
    if grid.crs is not None and gdf.crs != grid.crs:
        gdf = gdf.to_crs(grid.crs)
    gdf = gdf[~gdf.geometry.is_empty & gdf.geometry.notna()]
    left, bottom, right, top = grid.bounds
    gl, gb, gr, gt = gdf.total_bounds if len(gdf) else (0, 0, 0, 0)
    if not len(gdf) or gl > right or gr < left or gb > top or gt < bottom:
        raise NoOverlapError(
            f"The reference layer {Path(path).name} does not overlap the classified raster "
            f"(bounds {tuple(round(b, 3) for b in grid.bounds)} in {grid.crs})."
        )
    return gdf


def _class_values(series, path: str | os.PathLike, field: str) -> np.ndarray:
    """Integer class values of a field; nulls become -1 (left out). Raises InputError on text."""
    import pandas as pd

    num = pd.to_numeric(series, errors="coerce")
    bad = num.isna() & series.notna() & (series.astype(str).str.strip() != "")
    if bad.any():
        raise InputError(
            f"Field '{field}' of {Path(path).name} must hold integer class values; found "
            f"{series[bad].iloc[0]!r}. Recode it to the classified raster's values."
        )
    return num.fillna(-1).astype(np.int64).to_numpy()


def polygon_reference(path: str | os.PathLike, field: str, grid: RasterGrid, layer: str | None = None):
    """A per-window rasterizer of reference polygons for :func:`accumulate_confusion`.

    Returns:
        ``f(window, grid) -> (H, W) int64`` reference values, -1 where no polygon covers a pixel
        centre. Features are burned in file order (later ones win where polygons overlap).

    Raises:
        InputError: unreadable layer, missing field (the message lists the fields), non-integer values.
        NoOverlapError: the polygons do not overlap the grid.
    """
    from rasterio import features

    gdf = _read_vector(path, field, grid, layer)
    values = _class_values(gdf[field], path, field)
    keep = values >= 0
    geoms = gdf.geometry.to_numpy()[keep]
    values = values[keep]
    import shapely

    tree = shapely.STRtree(geoms)

    def rasterize(window: Window, g: RasterGrid) -> np.ndarray:
        h, w = int(window.height), int(window.width)
        tr = g.window_transform(window)
        box = shapely.box(*rasterio.windows.bounds(window, g.transform))
        idx = np.sort(tree.query(box, predicate="intersects"))
        if idx.size == 0:
            return np.full((h, w), -1, dtype=np.int64)
        return features.rasterize(
            zip(geoms[idx], values[idx].tolist()), out_shape=(h, w), transform=tr, fill=-1, dtype="int32"
        ).astype(np.int64)

    return rasterize


def point_pairs(
    classified: str | os.PathLike,
    path: str | os.PathLike,
    field: str,
    *,
    layer: str | None = None,
    ignore: Sequence[int] = (IGNORE_INDEX,),
    feedback: Feedback | None = None,
) -> tuple[PairCounts, dict]:
    """Compare reference points with the classified pixel under each point.

    Returns:
        ``(pairs, info)``: the pair counter and ``{"points", "used", "unlabelled", "outside", "sampling"}``
        (``sampling`` is the design recorded by :func:`core.assessment.sampling.create_accuracy_points`,
        or None).

    Raises:
        InputError / NoOverlapError: as for polygons.
    """
    fb = ensure_feedback(feedback)
    grid = RasterGrid.from_path(classified)
    gdf = _read_vector(path, field, grid, layer)
    if not (gdf.geometry.geom_type == "Point").all():
        gdf = gdf.copy()
        gdf["geometry"] = gdf.geometry.representative_point()
    ref = _class_values(gdf[field], path, field)
    xs, ys = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    rows, cols = rasterio.transform.rowcol(grid.transform, xs, ys)
    rows, cols = np.asarray(rows), np.asarray(cols)
    inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
    labelled = ref >= 0
    use = inside & labelled
    pred, nodata = _pixels_under(classified, grid, rows, cols, use, fb)
    ok = use.copy()
    if nodata is not None:
        ok &= pred != nodata
    for v in ignore:
        ok &= (pred != v) & (ref != v)
    pairs = PairCounts()
    pairs.add(ref[ok], pred[ok])
    info = {
        "points": int(len(gdf)),
        "used": int(ok.sum()),
        "unlabelled": int((~labelled).sum()),
        "outside": int((~inside).sum()),
        "sampling": _sampling_design(gdf),
    }
    if info["unlabelled"]:
        fb.warning(
            f"{info['unlabelled']} reference points have no value in '{field}' (not labelled yet) and were left out."
        )
    if info["outside"]:
        fb.warning(f"{info['outside']} reference points lie outside the classified raster and were left out.")
    if info["used"] == 0:
        raise NoOverlapError(
            f"None of the {len(gdf)} reference points falls on a classified pixel with a label; "
            "check the point layer's CRS, extent and class field."
        )
    return pairs, info


def _pixels_under(
    classified: str | os.PathLike, grid: RasterGrid, rows: np.ndarray, cols: np.ndarray, use: np.ndarray, fb: Feedback
) -> tuple[np.ndarray, float | None]:
    """Classified value of the pixel at ``(rows[i], cols[i])`` where ``use[i]`` (else -1), and the raster's nodata.

    Read block by block, so that memory stays bounded whatever the raster size.
    """
    pred = np.full(len(rows), -1, dtype=np.int64)
    with rasterio.open(classified) as ds:
        for win in disjoint_windows(grid.width, grid.height, 1024):
            check_canceled(fb)
            r0, c0 = int(win.row_off), int(win.col_off)
            sel = use & (rows >= r0) & (rows < r0 + win.height) & (cols >= c0) & (cols < c0 + win.width)
            if sel.any():
                block = ds.read(1, window=win)
                pred[sel] = block[rows[sel] - r0, cols[sel] - c0]
        return pred, ds.nodata


def _sampling_design(gdf) -> str | None:
    """The one design recorded in :data:`SAMPLING_FIELD`, or None (no field, none or several designs)."""
    if SAMPLING_FIELD not in gdf.columns:
        return None
    designs = set(gdf[SAMPLING_FIELD].dropna().astype(str))
    return designs.pop() if len(designs) == 1 else None


# ---------------------------------------------------------------------------- class counts
def class_pixel_counts(
    classified: str | os.PathLike, *, window_size: int = 1024, feedback: Feedback | None = None
) -> dict[int, int]:
    """Pixels per class value of a single-band classified raster (nodata excluded), streamed."""
    fb = ensure_feedback(feedback)
    grid = RasterGrid.from_path(classified)
    counts: dict[int, int] = {}
    wins = disjoint_windows(grid.width, grid.height, window_size)
    with rasterio.open(classified) as ds:
        for i, win in enumerate(wins):
            check_canceled(fb)
            a = ds.read(1, window=win)
            if ds.nodata is not None:
                a = a[a != ds.nodata]
            vals, cnt = np.unique(a, return_counts=True)
            for v, c in zip(vals.tolist(), cnt.tolist()):
                counts[int(v)] = counts.get(int(v), 0) + int(c)
            fb.set_progress(100.0 * (i + 1) / len(wins))
    return counts
