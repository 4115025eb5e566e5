"""Compute Accuracy: compare a classified raster with a reference raster, polygons or points.

Counterpart of ArcGIS "Compute Accuracy For Pixel Classification" / "Compute Confusion Matrix".
:func:`compute_accuracy` reads the reference onto the classified grid (:mod:`.reference`), scores the
pairs (:mod:`.metrics`), adds the area-weighted estimators of Olofsson et al. (2014), "Good practices
for estimating area and assessing accuracy of land change", Remote Sensing of Environment 148:42-57,
doi:10.1016/j.rse.2014.02.015, when the reference is a stratified point sample, and writes the files
of :mod:`.report`. :func:`binary_change_scores` scores a change raster against a binary change mask.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling

from ..classes import IGNORE_INDEX, ClassInfo, class_table_for_raster, raster_colors
from ..errors import NoOverlapError
from ..feedback import Feedback, SubFeedback, ensure_feedback
from ..raster.grid import RasterGrid, aligned, pixel_area_m2
from ..raster.tiling import disjoint_windows
from .area_estimates import olofsson_estimates
from .metrics import AccuracyReport, PairCounts, accuracy_scores, binary_scores, confusion_matrix
from .reference import (
    ReferenceKind,
    accumulate_confusion,
    class_pixel_counts,
    point_pairs,
    polygon_reference,
    read_class_window,
    reference_kind,
)
from .report import write_matrix_csv, write_metrics_json, write_report_html
from .sampling import STRATIFIED_DESIGNS


@dataclass(frozen=True)
class AccuracyOptions:
    """What :func:`compute_accuracy` compares and which files it writes.

    Attributes:
        classified: single-band classified raster (its nodata is ignored).
        reference: raster, polygon or point dataset (vector: any format geopandas reads).
        reference_field: integer class field of a vector reference.
        reference_layer: layer name inside a multi-layer vector file (GeoPackage).
        class_table: CSV ``value,name[,color]``; default the raster's ``.qml`` sidecar, else the
            values seen in the classification, named by value.
        ignore: class values ignored on both sides (nodata, unlabelled).
        stratified: add Olofsson et al. (2014) estimates (points only). None = detect it from the
            ``sampling`` field written by :func:`core.assessment.sampling.create_accuracy_points`.
        window_size: streaming window edge, pixels.
        matrix_path: confusion-matrix CSV (:func:`core.assessment.report.write_matrix_csv`), or None.
        metrics_path: metrics JSON (:func:`core.assessment.report.write_metrics_json`), or None.
        report_path: HTML report with its heat map beside it (:func:`core.assessment.report.write_report_html`),
            or None.
        title: title of the HTML report.
    """

    classified: str | os.PathLike
    reference: str | os.PathLike
    reference_field: str | None = None
    reference_layer: str | None = None
    class_table: str | os.PathLike | None = None
    ignore: tuple[int, ...] = (IGNORE_INDEX,)
    stratified: bool | None = None
    window_size: int = 1024
    matrix_path: str | os.PathLike | None = None
    metrics_path: str | os.PathLike | None = None
    report_path: str | os.PathLike | None = None
    title: str = "Accuracy assessment"


def compute_accuracy(options: AccuracyOptions, feedback: Feedback | None = None) -> AccuracyReport:
    """Compare a classified raster with a reference (raster, polygons or points) and write the report files.

    Steps: class table, reference pairs (one reader per reference kind, progress 0-90 %), the
    classes of the matrix, pixel-count scores, Olofsson estimates for a stratified point sample,
    then the files named in ``options`` (matrix CSV, metrics JSON, HTML report last).

    Returns:
        The :class:`core.assessment.metrics.AccuracyReport` (``meta`` holds the reference kind, the
        point counts and the class colours). Reference classes unknown to the classification are
        listed in ``unknown_reference`` (and warned about), not fatal.

    Raises:
        NoOverlapError: reference and classification do not overlap.
        InputError: missing/invalid class field (the message lists the layer's fields), bad class table.
        CanceledError: canceled through ``feedback``.
    """
    fb = ensure_feedback(feedback)
    step = SubFeedback(fb, 0, 90)
    table = class_table_for_raster(options.classified, options.class_table)
    kind = reference_kind(options.reference, options.reference_layer)
    pairs, points = _reference_pairs(options, kind, step)
    classes = _map_classes(options, pairs, table)
    rep = _scores(pairs, classes, table, kind, fb)
    rep.olofsson = _olofsson_if_stratified(options, kind, points, rep, step)
    colors = raster_colors(options.classified)
    rep.meta = {
        "reference_kind": kind,
        "reference": str(options.reference),
        "classified": str(options.classified),
        "points": points,
        "colors": [table[v].color if v in table else colors.get(v, "#808080") for v in classes],
    }
    _write_files(rep, options)
    fb.set_progress(100)
    unit = "points" if kind == "points" else "pixels"
    fb.info(
        f"Overall accuracy {_fmt(rep.overall_accuracy)}, kappa {_fmt(rep.kappa)}, "
        f"mean IoU {_fmt(rep.mean_iou)} over {rep.total} {unit}."
    )
    return rep


def _reference_pairs(o: AccuracyOptions, kind: ReferenceKind, fb: Feedback) -> tuple[PairCounts, dict[str, Any]]:
    """The (reference, predicted) pairs of one reference kind, and the point counts (points only)."""
    name = Path(o.reference).name
    info: dict[str, Any] = {}
    if kind == "raster":
        fb.info(f"Reference: raster {name}")
        pairs = accumulate_confusion(o.classified, o.reference, ignore=o.ignore, window_size=o.window_size, feedback=fb)
    elif kind == "points":
        fb.info(f"Reference: points {name}, field '{o.reference_field}'")
        pairs, info = point_pairs(
            o.classified, o.reference, o.reference_field or "", layer=o.reference_layer, ignore=o.ignore, feedback=fb
        )
    else:
        fb.info(f"Reference: polygons {name}, field '{o.reference_field}'")
        grid = RasterGrid.from_path(o.classified)
        raster_fn = polygon_reference(o.reference, o.reference_field or "", grid, o.reference_layer)
        pairs = accumulate_confusion(
            o.classified, raster_fn, ignore=tuple(o.ignore) + (-1,), window_size=o.window_size, feedback=fb
        )
    if not pairs.items():
        raise NoOverlapError(
            f"No pixel of {Path(o.classified).name} has both a prediction and a reference label "
            f"({kind} reference {name}); check extents, nodata and ignore values."
        )
    return pairs, info


def _map_classes(o: AccuracyOptions, pairs: PairCounts, table: dict[int, ClassInfo]) -> list[int]:
    """The matrix classes: the table's and the predicted values, less nodata and ignored values."""
    predicted_seen = set(pairs.predicted_values())
    known = set(table) | predicted_seen if table else predicted_seen
    with rasterio.open(o.classified) as ds:
        nodata = {int(ds.nodata)} if ds.nodata is not None and float(ds.nodata).is_integer() else set()
    excluded = set(o.ignore) | nodata
    return sorted(v for v in known if v not in excluded)  # a table's 'no data' row is not a class


def _scores(
    pairs: PairCounts, classes: list[int], table: dict[int, ClassInfo], kind: ReferenceKind, fb: Feedback
) -> AccuracyReport:
    """Pixel-count scores over ``classes``; warns about reference classes the classification does not know."""
    unknown = pairs.unmatched_reference(classes)
    if unknown:
        unit = "points" if kind == "points" else "pixels"
        fb.warning(
            "Reference classes unknown to the classification (left out of the matrix): "
            + ", ".join(f"{v} ({c} {unit})" for v, c in sorted(unknown.items()))
        )
    names = [table[v].name if v in table else f"class {v}" for v in classes]
    return accuracy_scores(pairs.matrix(classes), classes, names, unknown)


def _olofsson_if_stratified(
    o: AccuracyOptions, kind: ReferenceKind, points: dict[str, Any], rep: AccuracyReport, fb: Feedback
) -> dict[str, Any] | None:
    """Olofsson et al. (2014) estimates when the reference is a stratified point sample, else None.

    Stratum areas are the classified pixels per map class, in ha when the CRS gives a pixel area.
    """
    if kind != "points":
        if o.stratified:
            fb.warning("Area-weighted (Olofsson) estimates need a point sample as reference; they were not computed.")
        return None
    if not (o.stratified or (o.stratified is None and points.get("sampling") in STRATIFIED_DESIGNS)):
        return None
    counts = class_pixel_counts(o.classified, window_size=o.window_size, feedback=fb)
    areas = [counts.get(v, 0) for v in rep.class_values]
    px = pixel_area_m2(RasterGrid.from_path(o.classified))
    est = olofsson_estimates(rep.matrix, areas, (px or 1.0) / 1e4 if px else 1.0)
    est["area_unit"] = "ha" if px else "pixels"
    for w in est["warnings"]:
        fb.warning(f"Olofsson estimates: {w}")
    return est


def _write_files(rep: AccuracyReport, o: AccuracyOptions) -> None:
    """The files named in ``o``; the HTML report last, so that an existing report has its heat map."""
    if o.matrix_path:
        write_matrix_csv(rep, o.matrix_path)
    if o.metrics_path:
        write_metrics_json(rep, o.metrics_path)
    if o.report_path:
        write_report_html(rep, o.report_path, title=o.title)


def _fmt(v: float | None) -> str:
    return "undefined" if v is None else f"{v:.4f}"


def binary_change_scores(
    pred_path: str | os.PathLike,
    mask_path: str | os.PathLike,
    *,
    no_change_values: Sequence[int] = (0,),
    mask_change_values: Sequence[int] = (1,),
    window_size: int = 1024,
) -> dict[str, Any]:
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
            p, pok = read_class_window(pds, win)
            m, mok = read_class_window(mds, win)
            ok = pok & mok
            cm += confusion_matrix(
                np.isin(m, mc).astype(np.int64)[ok], (~np.isin(p, nc)).astype(np.int64)[ok], [0, 1], ignore=()
            )
    out = binary_scores(cm, positive=1)
    out["matrix"] = cm.tolist()
    return out
