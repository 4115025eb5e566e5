"""Benchmark: Presto fine-tuned in Train Model against the random forest, on the Slovenia south hold-out.

The protocol of :mod:`deeplandcover.tools.bench.recipe` (``--dataset slovenia``): chips exported with the demo's
hold-out polygon, chips touching it dropped; Train Model (architecture ``presto``, the recipe :data:`PRESTO`)
and a 200-tree random forest (every band of every date, ``--rf-pixels`` pixels of the training chips) each map
the scene; Compute Accuracy scores both maps against the reference polygons clipped to the hold-out.

Two date sets: the 5 dates of the series (2 of them fully cloudy) and the 3 clear ones (07-11, 08-30, 09-09).
Presto classifies each pixel from its own series, so the chips are small and do not overlap here (``--tile``,
default 16 px at stride 16: every labelled pixel once per epoch, in many small optimiser steps; the demo's 32 px
chips at stride 8 show each pixel 16 times per epoch for 16 times the compute). The forest takes the labelled
pixels of the same training chips.
``--control`` adds Presto from random weights (encoder weights ``none``): the gain of the pre-trained weights.

Run: ``.venv/bin/python -m deeplandcover.tools.bench.presto --dates 3 5 --seeds 1 2`` (needs ``DLC_DATA`` and
``DLC_WEIGHTS_DIR``; ``--jsonl FILE`` appends every run's figures as they come).
"""

from __future__ import annotations

import argparse
import dataclasses
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

from deeplandcover.tools.bench import common

#: Train Model's settings for Presto: the head alone for 1 epoch, then the encoder at a tenth of the rate.
PRESTO = {
    "architecture": "presto",
    "epochs": 20,  # 8 epochs: OA 0.893 / mIoU 0.419 on the 3 clear dates (seed 1); 20: 0.916 / 0.440
    "patience": 20,
    "batch_size": 2,
    "lr": 3e-3,
    "freeze_epochs": 1,
    "encoder_lr_factor": 0.1,
    "monitor": "miou",
    "augment": False,  # a per-pixel model: flips and rotations change nothing
}
_ALL = common.DATASETS["slovenia"].images
#: date set name -> the rasters of the series (oldest first)
DATES = {"5": _ALL, "3": (_ALL[0], _ALL[3], _ALL[4])}


def _mean(runs: list[dict[str, Any]], key: str) -> str:
    v = [r[key] for r in runs]
    return f"{statistics.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" if len(v) > 1 else f"{v[0]:.3f}"


def main(argv: list[str] | None = None) -> None:
    """Presto (and its control) and the forest for every date set and seed; print the Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dates", nargs="+", choices=sorted(DATES), default=["3", "5"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1])
    ap.add_argument("--tile", type=int, default=16, help="chip size and stride (pixels)")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=JSON", help="TrainConfig fields over PRESTO")
    ap.add_argument("--control", action="store_true", help="also Presto from random weights")
    ap.add_argument("--rf-pixels", type=int, default=60000)
    ap.add_argument("--jsonl", type=Path)
    a = ap.parse_args(argv)
    recipe = {**PRESTO, **{kv.split("=", 1)[0]: json.loads(kv.split("=", 1)[1]) for kv in a.set}}
    methods = {"Presto fine-tuned": recipe}
    if a.control:
        methods["Presto, random weights"] = {**recipe, "encoder_weights": "none", "freeze_epochs": 0}
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    t0 = time.perf_counter()
    for dates in a.dates:
        ds = dataclasses.replace(
            common.DATASETS["slovenia"], images=DATES[dates], tile=a.tile, stride=a.tile, architecture="presto"
        )
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            train_dir, reference, chips = common.prepare_holdout_chips(ds, tmp)
            for seed in a.seeds:
                runs = {
                    m: common.train_and_map(r, seed, train_dir, ds, tmp / f"{i}", False)
                    for i, (m, r) in enumerate(methods.items())
                }
                runs = {m: {**r, **common.score_holdout(r["maps"][False], reference, ds)} for m, r in runs.items()}
                rf = common.forest_map(seed, chips, train_dir, ds, tmp, a.rf_pixels)
                runs["random forest"] = {**rf, **common.score_holdout(rf["map"], reference, ds)}
                for method, fig in runs.items():
                    fig = {k: v for k, v in fig.items() if k not in ("map", "maps")}
                    results.setdefault((dates, method), []).append(fig)
                    line = {"dataset": "slovenia", "dates": dates, "method": method, "seed": seed, **fig}
                    print(json.dumps(line), file=sys.stderr, flush=True)
                    if a.jsonl:
                        with a.jsonl.open("a") as f:
                            f.write(json.dumps(line) + "\n")
    print("## Presto vs a random forest (Slovenia, the demo's south hold-out)\n")
    print(
        f"- command: `python -m deeplandcover.tools.bench.presto {shlex.join(argv if argv is not None else sys.argv[1:])}`"
    )
    print(
        f"- machine: {os.cpu_count()} cores ({common.cpu_model()}), CPU only; {(time.perf_counter() - t0) / 60:.0f} min"
    )
    print(f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}; seeds {a.seeds}; recipe {recipe}")
    print(f"- {len(chips)} training chips ({a.tile} px, stride {a.tile})\n")
    print("| dates | method | OA mean (range) | mIoU mean (range) | training s |")
    print("| --- | --- | --- | --- | --- |")
    for (dates, method), runs in results.items():
        secs = statistics.mean(r["train_s"] for r in runs)
        print(f"| {dates} | {method} | {_mean(runs, 'oa')} | {_mean(runs, 'miou')} | {secs:.0f} |")


if __name__ == "__main__":
    main()
