"""Files of an accuracy assessment: confusion-matrix CSV, metrics JSON/CSV, HTML report + heat map.

Every file is written through :func:`core.raster.io.atomic_output`; the HTML report is written last so
that a report that exists always has its heat-map PNG beside it.
"""

from __future__ import annotations

import csv
import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..raster.io import atomic_output
from .metrics import AccuracyReport


def _fmt(v: Any, digits: int = 4) -> str:
    """Empty text for undefined scores (None), rounded floats otherwise."""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def write_matrix_csv(rep: AccuracyReport, path: str | os.PathLike) -> Path:
    """Confusion matrix CSV: rows reference, columns predicted, headed by class names, plus totals.

    First row: ``reference \\ predicted, <name 1>, ..., <name K>, total``; then one row per reference
    class and a final ``total`` row (column sums).
    """
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["reference \\ predicted", *rep.class_names, "total"])
        for name, row in zip(rep.class_names, rep.matrix.tolist()):
            w.writerow([name, *row, sum(row)])
        w.writerow(["total", *rep.matrix.sum(axis=0).tolist(), rep.total])
    return Path(path)


def write_metrics_csv(rep: AccuracyReport, path: str | os.PathLike) -> Path:
    """Per-class metrics CSV (value, name, precision/user's, recall/producer's, F1, IoU, support,
    predicted), followed by the overall scores as ``metric,value`` rows. Undefined scores are empty."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "value",
                "name",
                "precision_users_accuracy",
                "recall_producers_accuracy",
                "f1",
                "iou",
                "support",
                "predicted",
            ]
        )
        for c in rep.per_class():
            w.writerow(
                [
                    c["value"],
                    c["name"],
                    _fmt(c["precision"], 6),
                    _fmt(c["recall"], 6),
                    _fmt(c["f1"], 6),
                    _fmt(c["iou"], 6),
                    c["support"],
                    c["predicted"],
                ]
            )
        w.writerow([])
        w.writerow(["metric", "value"])
        for k in ("overall_accuracy", "kappa", "mean_iou", "macro_f1", "total"):
            w.writerow([k, _fmt(getattr(rep, k), 6)])
    return Path(path)


def write_metrics_json(rep: AccuracyReport, path: str | os.PathLike) -> Path:
    """All scores, the matrix and (when present) the Olofsson estimates as JSON (None → null)."""
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(rep.to_dict(), indent=2, default=_json_default), encoding="utf-8")
    return Path(path)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def plot_confusion_matrix(rep: AccuracyReport, png_path: str | os.PathLike, normalize: bool = True) -> Path:
    """Heat map of an assessment's confusion matrix (see :func:`plot_confusion_heatmap`)."""
    return plot_confusion_heatmap(rep.matrix, rep.class_names, png_path, normalize=normalize)


def plot_confusion_heatmap(
    matrix: np.ndarray, class_names: list[str], png_path: str | os.PathLike, normalize: bool = True
) -> Path:
    """PNG heat map of a confusion matrix: row-normalised colours (= recall), counts as text.

    The one confusion-matrix figure of the plugin (Compute Accuracy's report and Train Model's report).

    Args:
        matrix: ``(K, K)`` integer counts, rows = reference, columns = predicted.
        class_names: K names, in the matrix's order.
        png_path: the PNG to write (atomically).
        normalize: colour by the share of the reference row (True) or by the counts.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # the object API needs no pyplot state (thread-safe in QGIS)

    cm = np.asarray(matrix).astype(np.float64)
    k = len(class_names)
    rows = cm.sum(axis=1, keepdims=True)
    shown = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0) if normalize else cm
    size = max(4.0, 0.6 * k + 2.5)
    fig = Figure(figsize=(size + 1.2, size), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(k), labels=class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), labels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title("Confusion matrix (colour: share of the reference row)" if normalize else "Confusion matrix")
    if k <= 25:
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    f"{int(cm[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if shown[i, j] > 0.5 * (shown.max() or 1) else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    with atomic_output(png_path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(png_path)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


_PER_CLASS_KEYS = ("value", "name", "precision", "recall", "f1", "iou", "support", "predicted")
_PER_CLASS_HEADER = ("value", "name", "precision (user's)", "recall (producer's)", "F1", "IoU")
_OLOFSSON_KEYS = (
    "mapped_area",
    "area",
    "area_ci",
    "users_accuracy",
    "users_accuracy_ci",
    "producers_accuracy",
    "producers_accuracy_ci",
)
_OLOFSSON_HEADER = (
    "class",
    "mapped area",
    "estimated area",
    "± CI",
    "user's accuracy",
    "± CI",
    "producer's accuracy",
    "± CI",
)
_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}.warn{color:#b00}"
)


def write_report_html(rep: AccuracyReport, path: str | os.PathLike, title: str = "Accuracy assessment") -> Path:
    """HTML report: summary, per-class table, heat map (``<report>_matrix.png`` beside it), matrix,
    reference classes unknown to the classification, and the Olofsson et al. (2014) estimates."""
    out = Path(path)
    png = out.with_name(out.stem + "_matrix.png")
    plot_confusion_matrix(rep, png)
    unit = "points" if (rep.meta or {}).get("reference_kind") == "points" else "pixels"
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        *_summary(rep, unit),
        *_per_class(rep, unit),
        *_matrix(rep, png),
        *_unknown_reference(rep, unit),
        *_olofsson(rep),
    ]
    doc = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
    with atomic_output(out) as tmp:
        Path(tmp).write_text(doc, encoding="utf-8")
    return out


def _summary(rep: AccuracyReport, unit: str) -> list[str]:
    """The inputs (when ``rep.meta`` names them) and the overall scores."""
    m = rep.meta or {}
    parts = []
    if m:
        parts.append(
            f"<p>Classified raster: <code>{html.escape(str(m.get('classified', '')))}</code><br>"
            f"Reference ({html.escape(str(m.get('reference_kind', '')))}): "
            f"<code>{html.escape(str(m.get('reference', '')))}</code></p>"
        )
    rows = [
        ["overall accuracy", rep.overall_accuracy],
        ["Cohen's kappa", rep.kappa],
        ["mean IoU", rep.mean_iou],
        ["macro F1", rep.macro_f1],
        [f"{unit} compared", rep.total],
    ]
    return [*parts, _table(["measure", "value"], rows)]


def _per_class(rep: AccuracyReport, unit: str) -> list[str]:
    header = [*_PER_CLASS_HEADER, f"support ({unit})", f"predicted ({unit})"]
    return [
        "<h2>Per class</h2><p>Precision = user's accuracy, recall = producer's accuracy. "
        "An empty cell is a score that is undefined (its denominator is 0).</p>",
        _table(header, [[c[k] for k in _PER_CLASS_KEYS] for c in rep.per_class()]),
    ]


def _matrix(rep: AccuracyReport, png: Path) -> list[str]:
    rows = [[n, *row] for n, row in zip(rep.class_names, rep.matrix.tolist())]
    return [
        f"<h2>Confusion matrix</h2><img src='{html.escape(png.name)}' alt='confusion matrix heat map'>",
        "<p>Rows: reference; columns: predicted.</p>",
        _table(["reference \\ predicted", *rep.class_names], rows),
    ]


def _unknown_reference(rep: AccuracyReport, unit: str) -> list[str]:
    if not rep.unknown_reference:
        return []
    return [
        "<h2 class='warn'>Reference classes unknown to the classification</h2><p>These reference "
        "values are not classes of the classified raster and were left out of the matrix.</p>",
        _table(["reference value", unit], [[v, c] for v, c in sorted(rep.unknown_reference.items())]),
    ]


def _olofsson(rep: AccuracyReport) -> list[str]:
    o = rep.olofsson
    if not o:
        return []
    z = o.get("z", 1.96)
    rows = [[n, *(o[k][i] for k in _OLOFSSON_KEYS)] for i, n in enumerate(rep.class_names)]
    return [
        f"<h2>Area-weighted estimates (Olofsson et al. 2014)</h2><p>Stratified estimators with "
        f"±{z:g}·SE confidence intervals; strata = map classes; area unit: {html.escape(o.get('area_unit', ''))}. "
        f"Overall accuracy {_fmt(o['overall_accuracy'])} ± {_fmt(o['overall_accuracy_ci'])}.</p>",
        _table(list(_OLOFSSON_HEADER), rows),
    ]
