"""Create Accuracy Points: a random sample of a classified raster, to be labelled by hand.

Counterpart of ArcGIS "Create Accuracy Assessment Points". The designs are those of Olofsson et al.
(2014), "Good practices for estimating area and assessing accuracy of land change", Remote Sensing of
Environment 148:42-57, doi:10.1016/j.rse.2014.02.015, Section 4.1; the layer records its design in
:data:`core.assessment.reference.SAMPLING_FIELD`, so that Compute Accuracy adds the area-weighted
estimators for a stratified sample.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import rasterio

from ..classes import IGNORE_INDEX
from ..errors import InputError
from ..feedback import Feedback, SubFeedback, check_canceled, ensure_feedback
from ..raster.grid import RasterGrid
from ..raster.io import atomic_output
from ..raster.tiling import disjoint_windows
from .reference import PREDICTED_FIELD, REFERENCE_FIELD, SAMPLING_FIELD, class_pixel_counts

Strategy = Literal["stratified_random", "equalized_stratified", "random"]
#: The sampling strategies, in the order of the algorithm's STRATEGY choices.
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
#: Designs whose strata are the map classes (Olofsson et al. 2014 estimators apply).
STRATIFIED_DESIGNS = ("stratified_random", "equalized_stratified")
#: Layer name of the GeoPackage written by :func:`create_accuracy_points`.
POINTS_LAYER = "accuracy_points"

#: A candidate point: (row, column, class value).
_Candidate = tuple[int, int, int]


@dataclass(frozen=True)
class AccuracyPointsOptions:
    """What :func:`create_accuracy_points` samples and writes.

    Attributes:
        classified: single-band classified raster.
        n_points: total number of points.
        output: GeoPackage to write (layer ``accuracy_points``), written atomically.
        strategy: ``stratified_random`` = points per map class proportional to its area;
            ``equalized_stratified`` = the same number per class; ``random`` = simple random over
            all classified pixels.
        min_distance: minimum distance between points, CRS units of the raster (0 = none).
        seed: random seed (same seed, same points).
        ignore: class values never sampled (besides nodata).
        window_size: streaming window edge, pixels.
    """

    classified: str | os.PathLike
    n_points: int
    output: str | os.PathLike
    strategy: Strategy = "stratified_random"
    min_distance: float = 0.0
    seed: int = 0
    ignore: tuple[int, ...] = (IGNORE_INDEX,)
    window_size: int = 1024


def create_accuracy_points(options: AccuracyPointsOptions, feedback: Feedback | None = None) -> dict[str, Any]:
    """Draw accuracy-assessment points on a classified raster and write them as a GeoPackage.

    Points are pixel centres. Steps: count pixels per class (streamed), allocate points to strata
    (:func:`allocate_points`), draw candidate pixels by their rank inside their stratum (a second
    streamed pass), accept candidates in random order while they are at least ``min_distance`` from
    every accepted point, write the layer.

    Returns:
        ``{"points": written, "per_class": {value: points}, "requested": {value: points}}``.
        The layer has fields ``predicted`` (map class), ``reference`` (empty integer, to label by
        hand) and ``sampling`` (the strategy, read back by :func:`core.assessment.compare.compute_accuracy`).

    Raises:
        InputError: ``n_points`` < 1, unknown strategy, or no classified pixel to sample.
        CanceledError: canceled through ``feedback`` (nothing written).
    """
    o = options
    if o.strategy not in STRATEGIES:
        raise InputError(
            f"Unknown sampling strategy '{o.strategy}'; use stratified_random, equalized_stratified or random."
        )
    if o.n_points < 1:
        raise InputError(f"The number of points must be at least 1, got {o.n_points}.")
    fb = ensure_feedback(feedback)
    rng = np.random.default_rng(o.seed)
    grid = RasterGrid.from_path(o.classified)
    counts = class_pixel_counts(o.classified, window_size=o.window_size, feedback=SubFeedback(fb, 0, 45))
    counts = {v: c for v, c in counts.items() if v not in set(o.ignore)}
    if not counts:
        raise InputError(f"{Path(o.classified).name} has no classified pixel to sample (all nodata or ignored).")
    strata = {0: sum(counts.values())} if o.strategy == "random" else counts
    alloc = allocate_points(strata, o.n_points, o.strategy)
    # oversample so that min-distance rejection can still reach the allocation
    ranks = {
        s: np.sort(rng.choice(strata[s], size=min(strata[s], max(4 * a, a + 50)), replace=False))
        for s, a in alloc.items()
        if a > 0
    }
    candidates = _candidates(o, grid, ranks, SubFeedback(fb, 45, 95))
    accepted, per_class = _accept(candidates, alloc, grid, o.min_distance, rng, fb)
    _write_points(accepted, o, grid)
    fb.set_progress(100)
    requested = alloc if o.strategy != "random" else {"all": alloc.get(0, 0)}
    return {"points": len(accepted), "per_class": per_class, "requested": requested}


def allocate_points(counts: dict[int, int], n: int, strategy: Strategy) -> dict[int, int]:
    """Points per stratum: proportional (largest remainder), equal, or one stratum for ``random``.

    Args:
        counts: pixels per stratum. n: total points. strategy: see :class:`AccuracyPointsOptions`.

    Returns:
        ``{stratum: points}`` over the strata with pixels, never more points than pixels.
    """
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


def _candidates(
    o: AccuracyPointsOptions, grid: RasterGrid, ranks: dict[int, np.ndarray], fb: Feedback
) -> dict[int, list[_Candidate]]:
    """The pixels of the drawn ranks, per stratum (rank = row-major position among the stratum's pixels)."""
    cand: dict[int, list[_Candidate]] = {s: [] for s in ranks}
    seen = {s: 0 for s in ranks}
    wins = disjoint_windows(grid.width, grid.height, o.window_size)
    with rasterio.open(o.classified) as ds:
        for i, win in enumerate(wins):
            check_canceled(fb)
            a = ds.read(1, window=win)
            valid = np.ones(a.shape, dtype=bool) if ds.nodata is None else a != ds.nodata
            valid &= ~np.isin(a, list(o.ignore))
            for s in ranks:
                r_idx, c_idx = np.nonzero(valid if o.strategy == "random" else valid & (a == s))  # row-major order
                k = len(r_idx)
                lo = np.searchsorted(ranks[s], seen[s])
                hi = np.searchsorted(ranks[s], seen[s] + k)
                for j in (ranks[s][lo:hi] - seen[s]).tolist():
                    cand[s].append(
                        (int(r_idx[j] + win.row_off), int(c_idx[j] + win.col_off), int(a[r_idx[j], c_idx[j]]))
                    )
                seen[s] += k
            fb.set_progress(100.0 * (i + 1) / len(wins))
    return cand


def _accept(
    cand: dict[int, list[_Candidate]],
    alloc: dict[int, int],
    grid: RasterGrid,
    min_distance: float,
    rng: np.random.Generator,
    fb: Feedback,
) -> tuple[list[tuple[float, float, int]], dict[int, int]]:
    """Candidates in random order, kept while ``min_distance`` from every kept point, up to the allocation.

    Returns:
        ``([(x, y, class value)], {class value: points})``; warns for each stratum left short.
    """
    accepted: list[tuple[float, float, int]] = []
    per_class: dict[int, int] = {}
    for s in sorted(cand):
        got = 0
        for j in rng.permutation(len(cand[s])).tolist():
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
            fb.warning(
                f"Only {got} of {alloc[s]} points could be placed in stratum {s} with a minimum distance of "
                f"{min_distance}; lower the minimum distance or the number of points."
            )
    return accepted, per_class


def _write_points(accepted: list[tuple[float, float, int]], o: AccuracyPointsOptions, grid: RasterGrid) -> None:
    """The GeoPackage layer ``accuracy_points``: id, predicted, reference (empty), sampling."""
    import geopandas as gpd
    import pandas as pd

    gdf = gpd.GeoDataFrame(
        {
            "id": np.arange(1, len(accepted) + 1, dtype=np.int64),
            PREDICTED_FIELD: np.asarray([p[2] for p in accepted], dtype=np.int64),
            REFERENCE_FIELD: pd.array([None] * len(accepted), dtype="Int64"),
            SAMPLING_FIELD: [o.strategy] * len(accepted),
        },
        geometry=gpd.points_from_xy([p[0] for p in accepted], [p[1] for p in accepted]),
        crs=grid.crs,
    )
    with atomic_output(o.output) as tmp:
        gdf.to_file(tmp, layer=POINTS_LAYER, driver="GPKG")
