"""Accuracy assessment of a classified raster against a reference raster, polygons or points.

Counterpart of ArcGIS "Compute Accuracy For Pixel Classification" / "Create Accuracy Assessment
Points". The reference can be:

(a) a classified raster on any grid: aligned onto the classified grid with nearest neighbour;
(b) polygons with an integer class field: reprojected (geopandas) to the classified CRS and
    rasterized window by window onto the classified grid (pixel centre inside, later features win);
(c) points with an integer class field: reprojected and compared with the classified pixel under
    each point. A point layer written by :func:`create_assessment_points` records its sampling
    design, so that the area-weighted estimators of Olofsson et al. (2014) are added for
    stratified samples (see :func:`core.metrics.olofsson_estimates`).

Numbers come from :mod:`core.metrics`; outputs (matrix CSV, metrics JSON/CSV, HTML report with a
heat map) from :mod:`core.accuracy_report`.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from rasterio.windows import Window

from ..chips.labels import is_raster
from ..errors import InputError, NoOverlapError
from ..feedback import Feedback, SubFeedback, check_canceled, ensure_feedback
from ..raster.grid import IGNORE_INDEX, RasterGrid, pixel_area_m2
from ..raster.io import atomic_output
from ..raster.tiling import disjoint_windows
from .metrics import (
    AccuracyReport,
    PairCounts,
    accumulate_confusion,
    accuracy_scores,
    olofsson_estimates,
)

#: Field names of an assessment point layer written by :func:`create_assessment_points`.
PREDICTED_FIELD = "predicted"
REFERENCE_FIELD = "reference"
SAMPLING_FIELD = "sampling"
STRATIFIED_DESIGNS = ("stratified_random", "equalized_stratified")
Strategy = Literal["stratified_random", "equalized_stratified", "random"]


# ----------------------------------------------------------------------------- class tables
@dataclass(frozen=True)
class ClassEntry:
    """One class of a class table: integer ``value``, display ``name``, ``color`` ``"#RRGGBB"``."""

    value: int
    name: str
    color: str = "#808080"


def read_class_table(path: str | os.PathLike) -> dict[int, ClassEntry]:
    """Read a class table CSV (``value,name[,color]`` or ``value,name,red,green,blue``, header optional).

    The one CSV reader is :func:`core.labels.read_class_table`; this keys its classes by value.

    Raises:
        InputError: missing file, a row without an integer value, duplicate values.
    """
    from ..chips.labels import read_class_table as read_classes

    return {c.value: ClassEntry(c.value, c.name, c.color) for c in read_classes(path)}


def read_qml_classes(path: str | os.PathLike) -> dict[int, ClassEntry]:
    """Classes of a QGIS paletted/unique-values raster style (``<paletteEntry value label color>``)."""
    root = ET.parse(path).getroot()
    out = {}
    for e in root.iter("paletteEntry"):
        try:
            v = int(float(e.get("value", "")))
        except ValueError:
            continue
        out[v] = ClassEntry(v, e.get("label") or str(v), (e.get("color") or "#808080").lower()[:7])
    return out


def class_table_for_raster(path: str | os.PathLike, csv_path: str | os.PathLike | None = None) -> dict[int, ClassEntry]:
    """The class table of a classified raster: the CSV when given, else the sidecar ``.qml``, else {}.

    Colours of a GDAL colour table fill in classes named only by value when a QML is missing, but
    a colour table has 256 entries and no names, so it never defines which classes exist.
    """
    if csv_path:
        return read_class_table(csv_path)
    qml = Path(path).with_suffix(".qml")
    if qml.is_file():
        try:
            return read_qml_classes(qml)
        except ET.ParseError:
            return {}
    return {}


def _colormap(path: str | os.PathLike) -> dict[int, str]:
    try:
        with rasterio.open(path) as ds:
            return {int(k): "#{:02x}{:02x}{:02x}".format(*v[:3]) for k, v in ds.colormap(1).items()}
    except (ValueError, rasterio.errors.RasterioError):
        return {}


# ------------------------------------------------------------------------------ references
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
        raise InputError(f"The reference layer {Path(path).name} has no field '{field}'. Available fields: "
                         f"{', '.join(fields)}.")
    if gdf.crs is None:
        raise InputError(f"The reference layer {Path(path).name} has no CRS; assign one (Vector > Data Management > Assign Projection).")
    if grid.crs is not None and gdf.crs != grid.crs:
        gdf = gdf.to_crs(grid.crs)
    gdf = gdf[~gdf.geometry.is_empty & gdf.geometry.notna()]
    left, bottom, right, top = grid.bounds
    gl, gb, gr, gt = gdf.total_bounds if len(gdf) else (0, 0, 0, 0)
    if not len(gdf) or gl > right or gr < left or gb > top or gt < bottom:
        raise NoOverlapError(f"The reference layer {Path(path).name} does not overlap the classified raster "
                             f"(bounds {tuple(round(b, 3) for b in grid.bounds)} in {grid.crs}).")
    return gdf


def _class_values(series, path: str | os.PathLike, field: str) -> np.ndarray:
    """Integer class values of a field; nulls become -1 (left out). Raises InputError on text."""
    import pandas as pd

    num = pd.to_numeric(series, errors="coerce")
    bad = num.isna() & series.notna() & (series.astype(str).str.strip() != "")
    if bad.any():
        raise InputError(f"Field '{field}' of {Path(path).name} must hold integer class values; found "
                         f"{series[bad].iloc[0]!r}. Recode it to the classified raster's values.")
    return num.fillna(-1).astype(np.int64).to_numpy()


def polygon_reference(path: str | os.PathLike, field: str, grid: RasterGrid, layer: str | None = None):
    """A per-window rasterizer of reference polygons for :func:`core.metrics.accumulate_confusion`.

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
        return features.rasterize(zip(geoms[idx], values[idx].tolist()), out_shape=(h, w), transform=tr,
                                  fill=-1, dtype="int32").astype(np.int64)

    return rasterize


def point_pairs(classified: str | os.PathLike, path: str | os.PathLike, field: str, *, layer: str | None = None,
                ignore: Sequence[int] = (IGNORE_INDEX,), feedback: Feedback | None = None) -> tuple[PairCounts, dict]:
    """Compare reference points with the classified pixel under each point.

    Returns:
        ``(pairs, info)``: the pair counter and ``{"points", "used", "unlabelled", "outside", "sampling"}``
        (``sampling`` is the design recorded by :func:`create_assessment_points`, or None).

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
    pred = np.full(len(gdf), -1, dtype=np.int64)
    with rasterio.open(classified) as ds:
        nodata = ds.nodata
        # read point values block by block, so memory stays bounded whatever the raster size
        for win in disjoint_windows(grid.width, grid.height, 1024):
            check_canceled(fb)
            r0, c0 = int(win.row_off), int(win.col_off)
            sel = use & (rows >= r0) & (rows < r0 + win.height) & (cols >= c0) & (cols < c0 + win.width)
            if sel.any():
                block = ds.read(1, window=win)
                pred[sel] = block[rows[sel] - r0, cols[sel] - c0]
    ok = use.copy()
    if nodata is not None:
        ok &= pred != nodata
    for v in ignore:
        ok &= (pred != v) & (ref != v)
    pairs = PairCounts()
    pairs.add(ref[ok], pred[ok])
    sampling = None
    if SAMPLING_FIELD in gdf.columns:
        designs = set(gdf[SAMPLING_FIELD].dropna().astype(str))
        sampling = designs.pop() if len(designs) == 1 else None
    info = {"points": int(len(gdf)), "used": int(ok.sum()), "unlabelled": int((~labelled).sum()),
            "outside": int((~inside).sum()), "sampling": sampling}
    if info["unlabelled"]:
        fb.warning(f"{info['unlabelled']} reference points have no value in '{field}' (not labelled yet) and were left out.")
    if info["outside"]:
        fb.warning(f"{info['outside']} reference points lie outside the classified raster and were left out.")
    if info["used"] == 0:
        raise NoOverlapError(f"None of the {len(gdf)} reference points falls on a classified pixel with a label; "
                             "check the point layer's CRS, extent and class field.")
    return pairs, info


# ---------------------------------------------------------------------------- class counts
def class_pixel_counts(classified: str | os.PathLike, *, window_size: int = 1024,
                       feedback: Feedback | None = None) -> dict[int, int]:
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


# --------------------------------------------------------------------------------- assess
def assess_accuracy(classified: str | os.PathLike, reference: str | os.PathLike, *, reference_field: str | None = None,
                    reference_layer: str | None = None, class_table: str | os.PathLike | None = None,
                    ignore: Sequence[int] = (IGNORE_INDEX,), stratified: bool | None = None,
                    window_size: int = 1024, feedback: Feedback | None = None) -> AccuracyReport:
    """Compare a classified raster with a reference (raster, polygons or points).

    Args:
        classified: single-band classified raster (its nodata is ignored).
        reference: raster, polygon or point dataset (vector: any format geopandas reads).
        reference_field: integer class field of a vector reference.
        reference_layer: layer name inside a multi-layer vector file (GeoPackage).
        class_table: CSV ``value,name[,color]``; default the raster's ``.qml`` sidecar, else the
            values seen in the classification, named by value.
        ignore: class values ignored on both sides (nodata, unlabelled).
        stratified: add Olofsson et al. (2014) estimates (points only). None = detect it from the
            ``sampling`` field written by :func:`create_assessment_points`.
        window_size: streaming window edge, pixels.
        feedback: progress, cancel and warnings.

    Returns:
        The :class:`core.metrics.AccuracyReport`. Reference classes unknown to the classification are
        listed in ``unknown_reference`` (and warned about), not fatal.

    Raises:
        NoOverlapError: reference and classification do not overlap.
        InputError: missing/invalid class field (the message lists the layer's fields), bad class table.
    """
    fb = ensure_feedback(feedback)
    table = class_table_for_raster(classified, class_table)
    grid = RasterGrid.from_path(classified)
    info: dict[str, Any] = {}
    if is_raster(reference):
        fb.info(f"Reference: raster {Path(reference).name}")
        pairs = accumulate_confusion(classified, reference, ignore=ignore, window_size=window_size, feedback=fb)
        kind = "raster"
    else:
        import geopandas as gpd

        gtypes = set(gpd.read_file(reference, layer=reference_layer, rows=slice(0, 50)).geometry.geom_type.dropna()) \
            if reference_layer else set(gpd.read_file(reference, rows=slice(0, 50)).geometry.geom_type.dropna())
        if gtypes and gtypes <= {"Point", "MultiPoint"}:
            kind = "points"
            fb.info(f"Reference: points {Path(reference).name}, field '{reference_field}'")
            pairs, info = point_pairs(classified, reference, reference_field or "", layer=reference_layer,
                                      ignore=ignore, feedback=fb)
        else:
            kind = "polygons"
            fb.info(f"Reference: polygons {Path(reference).name}, field '{reference_field}'")
            raster_fn = polygon_reference(reference, reference_field or "", grid, reference_layer)
            pairs = accumulate_confusion(classified, raster_fn, ignore=tuple(ignore) + (-1,),
                                         window_size=window_size, feedback=fb)
    items = pairs.items()
    if not items:
        raise NoOverlapError(f"No pixel of {Path(classified).name} has both a prediction and a reference label "
                             f"({kind} reference {Path(reference).name}); check extents, nodata and ignore values.")
    predicted_seen = set(pairs.predicted_values())
    known = set(table) | predicted_seen if table else predicted_seen
    with rasterio.open(classified) as ds:
        excluded = set(ignore) | ({int(ds.nodata)} if ds.nodata is not None and float(ds.nodata).is_integer() else set())
    classes = sorted(v for v in known if v not in excluded)  # a table's 'no data' row is not a class
    unknown = pairs.unmatched_reference(classes)
    if unknown:
        fb.warning("Reference classes unknown to the classification (left out of the matrix): "
                   + ", ".join(f"{v} ({c} {'points' if kind == 'points' else 'pixels'})" for v, c in sorted(unknown.items())))
    colors = _colormap(classified)
    names = [table[v].name if v in table else f"class {v}" for v in classes]
    cm = pairs.matrix(classes)
    rep = accuracy_scores(cm, classes, names, unknown)
    if kind == "points":
        detect = info.get("sampling") in STRATIFIED_DESIGNS
        if stratified or (stratified is None and detect):
            counts = class_pixel_counts(classified, window_size=window_size, feedback=SubFeedback(fb, 0, 100))
            areas = [counts.get(v, 0) for v in classes]
            px = pixel_area_m2(grid)
            est = olofsson_estimates(cm, areas, (px or 1.0) / 1e4 if px else 1.0)
            est["area_unit"] = "ha" if px else "pixels"
            for w in est["warnings"]:
                fb.warning(f"Olofsson estimates: {w}")
            rep.olofsson = est
    elif stratified:
        fb.warning("Area-weighted (Olofsson) estimates need a point sample as reference; they were not computed.")
    rep.meta = {"reference_kind": kind, "reference": str(reference), "classified": str(classified),
                "points": info, "colors": [table[v].color if v in table else colors.get(v, "#808080") for v in classes]}
    return rep


# ------------------------------------------------------------------- assessment points
def _allocate(counts: dict[int, int], n: int, strategy: Strategy) -> dict[int, int]:
    """Points per stratum: proportional (largest remainder), equal, or one stratum for ``random``."""
    classes = [c for c in sorted(counts) if counts[c] > 0]
    if not classes:
        return {}
    if strategy == "equalized_stratified":
        base, extra = divmod(n, len(classes))
        alloc = {c: base + (1 if i < extra else 0) for i, c in enumerate(classes)}
    else:
        total = sum(counts[c] for c in classes)
        quota = {c: n * counts[c] / total for c in classes}
        alloc = {c: int(np.floor(q)) for c, q in quota.items()}
        for c in sorted(classes, key=lambda c: quota[c] - alloc[c], reverse=True)[: n - sum(alloc.values())]:
            alloc[c] += 1
    return {c: min(a, counts[c]) for c, a in alloc.items()}


def create_assessment_points(classified: str | os.PathLike, n: int, out_path: str | os.PathLike, *,
                             strategy: Strategy = "stratified_random", min_distance: float = 0.0, seed: int = 0,
                             ignore: Sequence[int] = (IGNORE_INDEX,), window_size: int = 1024,
                             feedback: Feedback | None = None) -> dict[str, Any]:
    """Draw accuracy-assessment points on a classified raster and write them as a GeoPackage.

    Strategies (ArcGIS "Create Accuracy Assessment Points"; Olofsson et al. 2014, Section 4.1):
    ``stratified_random`` = points per map class proportional to its area; ``equalized_stratified``
    = the same number per class; ``random`` = simple random over all classified pixels.
    Points are pixel centres. Candidates are drawn in two streamed passes (count pixels per class,
    then pick pixels by their rank inside their class), then accepted in random order while they
    are at least ``min_distance`` from every accepted point.

    Args:
        classified: single-band classified raster.
        n: total number of points.
        out_path: GeoPackage to write (layer ``accuracy_points``), written atomically.
        strategy: see above.
        min_distance: minimum distance between points, CRS units of the raster (0 = none).
        seed: random seed (same seed, same points).
        ignore: class values never sampled (besides nodata).
        window_size: streaming window edge, pixels.
        feedback: progress, cancel, warnings.

    Returns:
        ``{"points": written, "per_class": {value: points}, "requested": {value: points}}``.
        The layer has fields ``predicted`` (map class), ``reference`` (empty integer, to label by
        hand) and ``sampling`` (the strategy, read back by :func:`assess_accuracy`).

    Raises:
        InputError: ``n`` < 1, unknown strategy, or no classified pixel to sample.
    """
    import geopandas as gpd
    import pandas as pd

    if strategy not in ("stratified_random", "equalized_stratified", "random"):
        raise InputError(f"Unknown sampling strategy '{strategy}'; use stratified_random, equalized_stratified or random.")
    if n < 1:
        raise InputError(f"The number of points must be at least 1, got {n}.")
    fb = ensure_feedback(feedback)
    rng = np.random.default_rng(seed)
    grid = RasterGrid.from_path(classified)
    counts = class_pixel_counts(classified, window_size=window_size, feedback=SubFeedback(fb, 0, 45))
    counts = {v: c for v, c in counts.items() if v not in set(ignore)}
    if not counts:
        raise InputError(f"{Path(classified).name} has no classified pixel to sample (all nodata or ignored).")
    strata = {0: sum(counts.values())} if strategy == "random" else counts
    alloc = _allocate(strata, n, strategy)
    # oversample so that min-distance rejection can still reach the allocation
    ranks = {s: np.sort(rng.choice(strata[s], size=min(strata[s], max(4 * a, a + 50)), replace=False))
             for s, a in alloc.items() if a > 0}
    cand: dict[int, list[tuple[int, int, int]]] = {s: [] for s in ranks}
    seen = {s: 0 for s in ranks}
    wins = disjoint_windows(grid.width, grid.height, window_size)
    with rasterio.open(classified) as ds:
        for i, win in enumerate(wins):
            check_canceled(fb)
            a = ds.read(1, window=win)
            valid = np.ones(a.shape, dtype=bool) if ds.nodata is None else a != ds.nodata
            valid &= ~np.isin(a, list(ignore))
            for s in ranks:
                m = valid if strategy == "random" else valid & (a == s)
                r_idx, c_idx = np.nonzero(m)  # row-major order = rank order inside the window
                k = len(r_idx)
                lo = np.searchsorted(ranks[s], seen[s])
                hi = np.searchsorted(ranks[s], seen[s] + k)
                local = ranks[s][lo:hi] - seen[s]
                for j in local.tolist():
                    rr, cc = int(r_idx[j] + win.row_off), int(c_idx[j] + win.col_off)
                    cand[s].append((rr, cc, int(a[r_idx[j], c_idx[j]])))
                seen[s] += k
            fb.set_progress(45 + 50.0 * (i + 1) / len(wins))
    accepted: list[tuple[float, float, int]] = []
    per_class: dict[int, int] = {}
    for s in sorted(cand):
        order = rng.permutation(len(cand[s]))
        got = 0
        for j in order.tolist():
            if got >= alloc[s]:
                break
            rr, cc, v = cand[s][j]
            x, y = rasterio.transform.xy(grid.transform, rr, cc)
            if min_distance > 0 and accepted:
                pts = np.asarray([(p[0], p[1]) for p in accepted])
                if np.min(np.hypot(pts[:, 0] - x, pts[:, 1] - y)) < min_distance:
                    continue
            accepted.append((float(x), float(y), v))
            per_class[v] = per_class.get(v, 0) + 1
            got += 1
        if got < alloc[s]:
            fb.warning(f"Only {got} of {alloc[s]} points could be placed in stratum {s} with a minimum distance of "
                       f"{min_distance}; lower the minimum distance or the number of points.")
    gdf = gpd.GeoDataFrame(
        {
            "id": np.arange(1, len(accepted) + 1, dtype=np.int64),
            PREDICTED_FIELD: np.asarray([p[2] for p in accepted], dtype=np.int64),
            REFERENCE_FIELD: pd.array([None] * len(accepted), dtype="Int64"),
            SAMPLING_FIELD: [strategy] * len(accepted),
        },
        geometry=gpd.points_from_xy([p[0] for p in accepted], [p[1] for p in accepted]),
        crs=grid.crs,
    )
    with atomic_output(out_path) as tmp:
        gdf.to_file(tmp, layer="accuracy_points", driver="GPKG")
    fb.set_progress(100)
    requested = alloc if strategy != "random" else {"all": alloc.get(0, 0)}
    return {"points": len(accepted), "per_class": per_class, "requested": requested}
