"""``report.html`` of a training run: loss curves, per-class metrics, confusion matrix, ONNX check.

Figures are PNGs written beside the HTML with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..modelcard import ModelCard


def _plots(out: Path, history: list[dict[str, float]], cm: np.ndarray, names: list[str]) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(ep, [h["train_loss"] for h in history], "o-", label="training loss")
    a1.plot(ep, [h["val_loss"] for h in history], "o-", label="validation loss")
    a1.set_xlabel("epoch"), a1.set_ylabel("loss"), a1.legend()
    for k in ("oa", "miou", "f1"):
        a2.plot(ep, [h[k] for h in history], "o-", label={"oa": "OA", "miou": "mIoU", "f1": "macro F1"}[k])
    a2.set_xlabel("epoch"), a2.set_ylim(0, 1), a2.legend()
    fig.tight_layout()
    fig.savefig(out / "loss_curves.png", dpi=90)
    plt.close(fig)

    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    k = len(names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * k, 1.0 + 0.6 * k))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), names, rotation=45, ha="right"), ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted"), ax.set_ylabel("reference")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{cm[i, j]}", ha="center", va="center", fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(out / "confusion_matrix.png", dpi=90)
    plt.close(fig)
    return "loss_curves.png", "confusion_matrix.png"


def write_report(out_dir: str | os.PathLike, history: list[dict[str, float]], metrics: dict[str, Any],
                 card: ModelCard, parity: dict[str, Any]) -> Path:
    """Write ``report.html`` (+ ``loss_curves.png``, ``confusion_matrix.png``) into ``out_dir``.

    Args:
        out_dir: the training output folder.
        history: per-epoch rows (``epoch``, ``train_loss``, ``val_loss``, ``oa``, ``miou``, ``f1``, ``lr``).
        metrics: validation metrics of the best model (see :func:`core.losses.scores`) plus
            ``val_loss``, ``confusion_matrix`` (K x K list) and ``class_names``.
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
        f"<td>{metrics['support'][i]}</td><td>{metrics['precision_per_class'][i]:.3f}</td>"
        f"<td>{metrics['recall_per_class'][i]:.3f}</td><td>{metrics['f1_per_class'][i]:.3f}</td>"
        f"<td>{metrics['iou_per_class'][i]:.3f}</td></tr>"
        for i, c in enumerate(card.classes))
    ok = "passed" if parity.get("passed") else "FAILED"
    tr = card.training
    text = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Deep Land Cover training report</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:auto}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}</style></head><body>
<h1>Training report: {e(card.architecture)}</h1>
<p>Created {e(card.created)}. Chip folders: {e(', '.join(map(str, tr.get('chip_folders', []))))}.
Bands: {e(', '.join(card.bands))}{f'; {card.time_steps} dates' if card.time_steps else ''}. Tile {card.tile_size} px,
suggested overlap {card.overlap} px. Architecture parameters: {e(str(card.arch_params))}.</p>
<h2>Validation (spatial hold-out blocks, best epoch {tr.get('best_epoch')} of {tr.get('epochs_run')})</h2>
<p>Loss {metrics['val_loss']:.4f}, overall accuracy <b>{metrics['oa']:.4f}</b>, mIoU <b>{metrics['miou']:.4f}</b>,
macro F1 {metrics['f1']:.4f}; learning rate {tr.get('lr', 0):.2e}.</p>
<table><tr><th>value</th><th>class</th><th>pixels</th><th>precision</th><th>recall</th><th>F1</th><th>IoU</th></tr>{rows}</table>
<h2>Curves</h2><img src="{curves}" alt="loss curves">
<h2>Confusion matrix (rows: reference, columns: prediction; colour: row share)</h2><img src="{cmpng}" alt="confusion matrix">
<h2>ONNX export check</h2><p>ONNX Runtime vs PyTorch on a validation batch of shape {parity.get('shape')}:
<b>{ok}</b> (max |difference| {parity.get('max_abs_diff', float('nan')):.2e}, rtol {parity.get('rtol')}, atol {parity.get('atol')}).</p>
<h2>Versions</h2><p>{e(', '.join(f'{k} {v}' for k, v in card.versions.items()))}</p>
</body></html>"""
    path = out / "report.html"
    tmp = path.with_name(".report.html.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
