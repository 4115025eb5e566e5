"""Leave-cities-out benchmark of the two-date change models against change-vector analysis (OSCD).

Run: ``python -m deeplandcover.tools.bench.change_cities [--architectures fc_siam_diff unet_early_fusion]
[--folds 5] [--seeds 1 2] [--epochs 40]``. Prints a Markdown section (command, machine, date, figures).

The setting of Caye Daudt et al. (2018, "Fully Convolutional Siamese Networks for Change Detection",
ICIP; and "Urban Change Detection for Multispectral Earth Observation Using Convolutional Neural
Networks", IGARSS): train on some OSCD cities, score on cities the model has never seen. Every OSCD city
of the sample data (``$DLC_DATA/oscd_s2_change/<city>/``: two 13-band Sentinel-2 L1C dates and the change
mask; CI's copy has 10) is exported once as pair chips with Export Training Tiles' core (64 px, no
overlap, date 2 resampled onto date 1's grid where the data set delivers it on its own grid). The cities
are split into ``--folds`` groups; for each fold a model is trained with Train Model's core on the chip
folders of all other cities (validation: spatial blocks of those cities; class weights ``inverse``
against the 1-4 % of change pixels; the epoch with the best validation macro F1 is kept) and applied
with Detect Change's core to each held-out city. The scores are change precision, recall, F1 and IoU
(:func:`core.assessment.compare.binary_change_scores`), next to CVA (the plugin's own, Otsu threshold,
13 bands) on the same city.
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

from deeplandcover.core.assessment.compare import binary_change_scores
from deeplandcover.core.change.cva import CvaOptions, change_vector_analysis
from deeplandcover.core.change.model import ChangeModelOptions, detect_change_with_model
from deeplandcover.core.inference.options import ClassifyOptions
from deeplandcover.tools.bench.common import data_dir, machine, missing_data_message

OSCD = data_dir() / "oscd_s2_change"


def cities() -> dict[str, tuple[Path, Path, Path]]:
    """City -> (date 1 raster, date 2 raster, change mask) of every OSCD city in the sample data, by name.

    Raises:
        FileNotFoundError: no OSCD city in the sample data (the message says how to get them).
    """
    out = {}
    for d in sorted(p for p in OSCD.glob("*") if p.is_dir() and p.name != "original"):
        dates = sorted(d.glob(f"{d.name}_*_s2l1c_13b_10m.tif"))
        mask = d / f"{d.name}_change_mask.tif"
        if len(dates) == 2 and mask.is_file():
            out[d.name] = (dates[0], dates[1], mask)
    if not out:
        raise FileNotFoundError(missing_data_message(OSCD.parent))
    return out


def folds(names: list[str], n: int) -> list[list[str]]:
    """``names`` dealt into ``n`` held-out groups in a fixed order (city i goes to group i mod n)."""
    n = max(1, min(n, len(names) - 1))
    return [names[i::n] for i in range(n)]


def export_city(city: str, paths: tuple[Path, Path, Path], out: Path) -> Path:
    """Pair chips of one city (64 px, stride 64, all labelled), once; returns the chip folder."""
    from deeplandcover.core.chips.export import export_training_tiles
    from deeplandcover.core.chips.options import ExportOptions

    folder = out / city
    if not (folder / "manifest.json").is_file():
        b, a, m = paths
        opts = ExportOptions([b], m, folder, images2=a, tile_size=64, stride=64, min_labelled_fraction=0.5)
        export_training_tiles(opts)
    return folder


def train(arch: str, folders: list[Path], out: Path, epochs: int, seed: int):
    """Train ``arch`` on the chip folders; returns the :class:`core.training.config.TrainResult`."""
    from deeplandcover.core.training.config import TrainConfig
    from deeplandcover.core.training.trainer import train_model

    cfg = TrainConfig(
        architecture=arch,
        epochs=epochs,
        batch_size=16,
        class_weights="inverse",
        monitor="f1",
        patience=epochs,
        seed=seed,
        device="cpu",
    )
    return train_model(folders, out, cfg)


def score(pred: Path, mask: Path) -> dict[str, float | None]:
    """Change precision, recall, F1 and IoU of a 0/1 change raster against the mask (IoU = F1 / (2 - F1))."""
    s = binary_change_scores(pred, mask)
    f1 = s["f1"]
    return {"precision": s["precision"], "recall": s["recall"], "f1": f1, "iou": None if f1 is None else f1 / (2 - f1)}


def run(args: argparse.Namespace, tmp: Path) -> list[tuple]:
    """All rows ``(fold, city, method, seed, precision, recall, f1, iou, train seconds)``."""
    allc = cities()
    chips = {c: export_city(c, p, tmp / "chips") for c, p in allc.items()}
    rows = []
    for k, held in enumerate(folds(list(allc), args.folds)):
        for city in held:
            b, a, m = allc[city]
            r = change_vector_analysis(CvaOptions(b, a, tmp / f"cva_{city}.tif"))
            rows.append((k, city, "CVA (13 bands, Otsu)", "-", *score(r.output, m).values(), None))
            print(f"| {' | '.join(map(str, rows[-1]))} |", file=sys.stderr, flush=True)
        train_on = [chips[c] for c in allc if c not in held]
        for arch in args.architectures:
            for seed in args.seeds:
                t = time.perf_counter()
                res = train(arch, train_on, tmp / f"m_{k}_{arch}_{seed}", args.epochs, seed)
                sec = time.perf_counter() - t
                for city in held:
                    b, a, m = allc[city]
                    out = tmp / f"{arch}_{seed}_{city}.tif"
                    opts = ChangeModelOptions(b, a, res.model_path, out, classify=ClassifyOptions(device="cpu"))
                    detect_change_with_model(opts)
                    rows.append((k, city, arch, seed, *score(out, m).values(), sec))
                    print(f"| {' | '.join(map(str, rows[-1]))} |", file=sys.stderr, flush=True)
                print(f"fold {k} {arch} seed {seed}: {sec:.0f} s", file=sys.stderr, flush=True)
    return rows


def _f(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def report(args: argparse.Namespace, rows: list[tuple], seconds: float) -> None:
    """Print the Markdown section: per city and method, then the mean F1 per method."""
    print("## Detect Change: leave-cities-out on OSCD (change models vs CVA)\n")
    print(f"- command: `python -m deeplandcover.tools.bench.change_cities {' '.join(sys.argv[1:])}`")
    print(f"- machine: {machine()}; date {dt.datetime.now(dt.timezone.utc):%Y-%m-%d}; {seconds / 60:.0f} min in all")
    n = len({r[1] for r in rows})
    print(f"- {n} cities in {len({r[0] for r in rows})} folds; {args.epochs} epochs, seeds {args.seeds}\n")
    print("| fold | city | method | seed | precision | recall | F1 | IoU | train s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for k, city, meth, seed, p, r, f1, iou, sec in rows:
        print(f"| {k} | {city} | {meth} | {seed} | {_f(p)} | {_f(r)} | {_f(f1)} | {_f(iou)} | {_f(sec)} |")
    print("\n| method | mean F1 over cities (and seeds) | cities where it beats CVA |")
    print("| --- | --- | --- |")
    cva = {r[1]: r[6] or 0.0 for r in rows if r[3] == "-"}
    for meth in dict.fromkeys(r[2] for r in rows):
        mine = [r for r in rows if r[2] == meth]
        per_city = {c: float(np.mean([r[6] or 0.0 for r in mine if r[1] == c])) for c in {r[1] for r in mine}}
        wins = sum(per_city[c] > cva[c] for c in per_city)
        print(f"| {meth} | {np.mean(list(per_city.values())):.3f} | {wins} of {len(per_city)} |")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a Markdown section."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--architectures", nargs="+", default=["fc_siam_diff", "unet_early_fusion"])
    ap.add_argument("--folds", type=int, default=5, help="held-out groups of cities (5: 2 of 10 cities each)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args(argv)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dlc_bench_change_") as tmp:
        rows = run(args, Path(tmp))
    report(args, rows, time.perf_counter() - t)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    main()
