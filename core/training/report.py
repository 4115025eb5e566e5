"""The output folder of a training run and the files in it besides the checkpoints.

``training_log.csv`` has one row per epoch (:func:`epoch_row`, :func:`write_log`); ``report.html`` shows
the loss curves, per-class metrics, the confusion matrix and the ONNX check, with PNG figures written
beside it by matplotlib's Agg backend (no display needed). Every file is written through
:func:`core.raster.io.atomic_output`. A score that is undefined (None, e.g. the precision of a class
never predicted) is an empty CSV cell and "n/a" in the log line and the report.
"""

from __future__ import annotations

import csv
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..modelcard import ModelCard
from ..raster.io import atomic_output

#: Columns of ``training_log.csv`` before the per-class ``f1_<class name>`` columns.
LOG_COLUMNS = (
    "epoch",
    "train_loss",
    "val_loss",
    "oa",
    "miou",
    "f1",
    "lr",
    "batch_size",
    "seconds",
    "chips_per_s",
    "threads",
)


def create_output_folder(path: str | os.PathLike) -> list[Path]:
    """Create folder ``path`` (and its missing parents); the folders created, deepest first."""
    out = Path(path)
    created = [d for d in (out, *out.parents) if not d.exists()]
    out.mkdir(parents=True, exist_ok=True)
    return created


def remove_empty_folders(created: list[Path]) -> None:
    """Remove the ``created`` folders, deepest first, while they are empty (a folder with a file stays)."""
    for d in created:
        try:
            d.rmdir()
        except OSError:
            return


@dataclass(frozen=True)
class EpochRun:
    """How an epoch ran, for its ``training_log.csv`` row.

    Attributes:
        lr: the learning rate of its first parameter group. batch_size: chips per step.
        seconds: the whole epoch (training and validation), wall seconds.
        chips_per_s: training chips per wall second of the training pass (all ranks); None: not measured.
        threads: torch CPU threads at its end; None: not measured.
    """

    lr: float
    batch_size: int
    seconds: float
    chips_per_s: float | None = None
    threads: int | None = None


def epoch_row(
    epoch: int, train_loss: float, metrics: dict[str, Any], run: EpochRun, class_names: list[str]
) -> dict[str, Any]:
    """The ``training_log.csv`` row of an epoch (``metrics``: :func:`core.training.steps.validation_metrics`)."""
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": metrics["val_loss"],
        "oa": metrics["oa"],
        "miou": metrics["miou"],
        "f1": metrics["f1"],
        "lr": run.lr,
        "batch_size": run.batch_size,
        "seconds": run.seconds,
        "chips_per_s": run.chips_per_s,
        "threads": run.threads,
        **{f"f1_{n}": v for n, v in zip(class_names, metrics["f1_per_class"])},
    }


def epoch_message(row: dict[str, Any], epochs: int, class_names: list[str], improved: bool) -> str:
    """The log line of an epoch's row: losses, OA, mIoU, macro F1 and the F1 of each class."""
    per_class = ", ".join(f"{n} {_fmt(row[f'f1_{n}'], 2)}" for n in class_names)
    return (
        f"Epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.4f}, val loss {row['val_loss']:.4f}, "
        f"OA {row['oa']:.3f}, mIoU {row['miou']:.3f}, F1 {row['f1']:.3f} [{per_class}]"
        + (" *best*" if improved else "")
        + _speed_text(row)
    )


def _speed_text(row: dict[str, Any]) -> str:
    if row.get("chips_per_s") is None:
        return ""
    return f"; {row['seconds']:.1f} s, {row['chips_per_s']:.1f} chips/s, {row['threads']} threads"


def speed_summary(history: list[dict[str, Any]], busy_seconds: float = 0.0) -> dict[str, Any]:
    """Median seconds per epoch and chips/s over ``history``, the threads used and the busy time (seconds).

    ``busy_seconds``: wall seconds during which other programs kept at least 0.75 of a core busy
    (:attr:`core.training.threads.ThreadPolicy.busy_seconds`).
    """
    secs = [h["seconds"] for h in history if h.get("seconds") is not None]
    speed = [h["chips_per_s"] for h in history if h.get("chips_per_s") is not None]
    threads = sorted({h["threads"] for h in history if h.get("threads") is not None})
    return {
        "seconds_per_epoch": float(np.median(secs)) if secs else None,
        "chips_per_s": float(np.median(speed)) if speed else None,
        "threads": threads,
        "busy_seconds": round(float(busy_seconds), 1),
        "total_seconds": round(float(sum(secs)), 1),
    }


def write_log(path: str | os.PathLike, history: list[dict[str, Any]], class_names: list[str]) -> None:
    """Write ``training_log.csv``: one row per epoch, :data:`LOG_COLUMNS` then ``f1_<class>``; floats to 6 places."""
    cols = [*LOG_COLUMNS, *(f"f1_{n}" for n in class_names)]
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for row in history:
            w.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})


def _fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _plots(out: Path, history: list[dict[str, float]], cm: np.ndarray, names: list[str]) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # the object API needs no pyplot state (thread-safe in QGIS)

    from ..assessment.report import plot_confusion_heatmap

    ep = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 3.6))
    a1, a2 = fig.subplots(1, 2)
    a1.plot(ep, [h["train_loss"] for h in history], "o-", label="training loss")
    a1.plot(ep, [h["val_loss"] for h in history], "o-", label="validation loss")
    a1.set_xlabel("epoch"), a1.set_ylabel("loss"), a1.legend()
    for k in ("oa", "miou", "f1"):
        a2.plot(ep, [h[k] for h in history], "o-", label={"oa": "OA", "miou": "mIoU", "f1": "macro F1"}[k])
    a2.set_xlabel("epoch"), a2.set_ylim(0, 1), a2.legend()
    fig.tight_layout()
    with atomic_output(out / "loss_curves.png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)

    plot_confusion_heatmap(cm, names, out / "confusion_matrix.png")
    return "loss_curves.png", "confusion_matrix.png"


def _speed_html(sp: dict[str, Any]) -> str:
    if sp.get("chips_per_s") is None:
        return ""
    busy = sp.get("busy_seconds") or 0.0
    warn = (
        f" <b>The machine was busy with other programs for {busy:.0f} s of the {sp['total_seconds']:.0f} s"
        " of training</b>: epochs were slower than on a quiet machine."
        if busy > 0.1 * (sp.get("total_seconds") or 0) and busy > 0
        else ""
    )
    threads = "/".join(str(t) for t in sp.get("threads", []))
    return (
        f"<p>Speed: {sp['chips_per_s']:.1f} training chips/s, {sp['seconds_per_epoch']:.1f} s per epoch "
        f"(medians), {threads} CPU threads.{warn}</p>"
    )


def write_report(
    out_dir: str | os.PathLike,
    history: list[dict[str, float]],
    metrics: dict[str, Any],
    card: ModelCard,
    parity: dict[str, Any],
) -> Path:
    """Write ``report.html`` (+ ``loss_curves.png``, ``confusion_matrix.png``) into ``out_dir``.

    Args:
        out_dir: the training output folder.
        history: per-epoch rows (``epoch``, ``train_loss``, ``val_loss``, ``oa``, ``miou``, ``f1``, ``lr``).
        metrics: validation metrics of the best model (:func:`core.training.steps.validation_metrics`:
            ``val_loss``, ``oa``, ``miou``, ``f1``, per-class lists, ``confusion_matrix``, ``class_names``).
        card: the exported model's card.
        parity: the ONNX Runtime vs PyTorch check (``passed``, ``max_abs_diff``, ``rtol``, ``atol``, ``shape``).

    Returns:
        The path of ``report.html``.
    """
    out = Path(out_dir)
    names = list(metrics["class_names"])
    cm = np.asarray(metrics["confusion_matrix"], dtype=np.int64)
    curves, cmpng = _plots(out, history, cm, names)
    e = html.escape
    rows = "".join(
        f"<tr><td>{c.value}</td><td><span style='background:{e(c.color)}'>&nbsp;&nbsp;&nbsp;</span> {e(c.name)}</td>"
        f"<td>{metrics['support'][i]}</td><td>{_fmt(metrics['precision_per_class'][i])}</td>"
        f"<td>{_fmt(metrics['recall_per_class'][i])}</td><td>{_fmt(metrics['f1_per_class'][i])}</td>"
        f"<td>{_fmt(metrics['iou_per_class'][i])}</td></tr>"
        for i, c in enumerate(card.classes)
    )
    ok = "passed" if parity.get("passed") else "FAILED"
    tr = card.training
    text = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Deep Land Cover training report</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:auto}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}</style></head><body>
<h1>Training report: {e(card.architecture)}</h1>
<p>Created {e(card.created)}. Chip folders: {e(", ".join(map(str, tr.get("chip_folders", []))))}.
Bands: {e(", ".join(card.bands))}{f"; {card.time_steps} dates" if card.time_steps else ""}. Tile {card.tile_size} px,
suggested overlap {card.overlap} px. Architecture parameters: {e(str(card.arch_params))}.</p>
<h2>Validation (spatial hold-out blocks, best epoch {tr.get("best_epoch")} of {tr.get("epochs_run")})</h2>
<p>Loss {metrics["val_loss"]:.4f}, overall accuracy <b>{metrics["oa"]:.4f}</b>, mIoU <b>{metrics["miou"]:.4f}</b>,
macro F1 {metrics["f1"]:.4f}; learning rate {tr.get("lr", 0):.2e}.</p>
{_speed_html(tr.get("speed") or {})}
<table><tr><th>value</th><th>class</th><th>pixels</th><th>precision</th><th>recall</th><th>F1</th><th>IoU</th></tr>{rows}</table>
<h2>Curves</h2><img src="{curves}" alt="loss curves">
<h2>Confusion matrix (rows: reference, columns: prediction; colour: row share)</h2><img src="{cmpng}" alt="confusion matrix">
<h2>ONNX export check</h2><p>ONNX Runtime vs PyTorch on a validation batch of shape {parity.get("shape")}:
<b>{ok}</b> (max |difference| {parity.get("max_abs_diff", float("nan")):.2e}, rtol {parity.get("rtol")}, atol {parity.get("atol")}).</p>
<h2>Versions</h2><p>{e(", ".join(f"{k} {v}" for k, v in card.versions.items()))}</p>
</body></html>"""
    path = out / "report.html"
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
