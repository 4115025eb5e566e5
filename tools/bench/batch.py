"""Benchmark of Dask batch inference (:func:`core.inference.batch.run.classify_batch`): scaling from 1 to 2 workers.

Run: ``python -m deeplandcover.tools.bench.batch [--rasters 8] [--size 1024] [--tile 256] [--overlap 32]``.
Prints a Markdown section (command, machine, date, figures):

(a) the same ``rasters`` x ``size``² 4-band uint16 GeoTIFFs classified by a seeded U-Net (:mod:`models.unet`,
    exported by :func:`core.training.onnx_export.export_onnx`) on a LocalCluster of 1 worker and of 2 workers (single
    threaded tasks), cluster start-up excluded; efficiency ``T1 / (2 * T2)``; and, for reference, the same
    rasters one after the other in this process with ONNX Runtime using every core;
(b) per-tile figures: end-to-end seconds per tile on one core, raw ``session.run`` seconds per tile on one
    core (same tiles in memory), so the host-side share (read, normalise, blend, write) is known, and the
    model's FLOPs per tile (counted on the PyTorch model);
(c) a written estimate of classifying all of Europe's land area at 10 m on N GPUs from these figures. GPU
    throughput is **not measured** here (no GPU on the benchmark machine): it is an assumption, labelled as such.
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

import numpy as np

from deeplandcover.tools.bench.common import CLASSES, cpu_model, make_model, make_raster

#: Europe's land area (km²), the figure of the brief: about 10.5 million km² (continent incl. European Russia).
EUROPE_KM2 = 10.5e6
#: NVIDIA H100 SXM FP32 (non-tensor) peak, TFLOP/s, from NVIDIA's H100 datasheet.
H100_FP32_TFLOPS = 67.0
#: Assumed fraction of that peak a small U-Net reaches under ONNX Runtime CUDA (an assumption, not measured).
GPU_EFFICIENCY = 0.15


def conv_flops(base_filters: int, depth: int, bands: int, classes: int, tile: int) -> float:
    """Multiply-adds x 2 of every Conv2d/ConvTranspose2d of the U-Net on one ``tile``² input (forward hooks)."""
    import torch
    from torch import nn

    from deeplandcover.models.unet import UNet

    net = UNet(bands, classes, base_filters=base_filters, depth=depth).eval()
    total = [0.0]

    def hook(mod, inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1]
        if isinstance(mod, nn.ConvTranspose2d):
            total[0] += 2.0 * inp[0].shape[1] * k * mod.out_channels * inp[0].shape[2] * inp[0].shape[3] / mod.groups
        else:
            total[0] += 2.0 * mod.in_channels / mod.groups * k * out.shape[1] * out.shape[2] * out.shape[3]

    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.register_forward_hook(hook)
    with torch.inference_mode():
        net(torch.zeros(1, bands, tile, tile))
    return total[0]


def raw_seconds_per_tile(model: Path, tile: int, batch: int, n: int = 16) -> float:
    """Seconds per tile of plain ``session.run`` on one thread (random tiles in memory, warm-up excluded)."""
    from deeplandcover.core.inference.session import open_session

    sess, _ = open_session(model, "cpu", 1)
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).normal(size=(batch, 4, tile, tile)).astype(np.float32)
    sess.run(None, {name: x})
    t0 = time.perf_counter()
    for _ in range(n // batch):
        sess.run(None, {name: x})
    return (time.perf_counter() - t0) / (n // batch * batch)


def run_cluster(
    files: list[Path], model: Path, out: Path, workers: int, tile: int, overlap: int, batch: int
) -> tuple[float, float, int]:
    """(cluster start-up s, batch run s, tiles) on a fresh LocalCluster of ``workers`` single-threaded tasks."""
    from distributed import Client, LocalCluster

    from deeplandcover.core.inference.batch.run import BatchOptions, classify_batch
    from deeplandcover.core.inference.options import ClassifyOptions

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    client.run(lambda: __import__("deeplandcover.core.inference.engine"))  # imports outside the timing
    start = time.perf_counter() - t0
    try:
        t1 = time.perf_counter()
        res = classify_batch(
            files,
            model,
            out,
            BatchOptions(scheduler=client, overwrite=True),
            ClassifyOptions(tile_size=tile, overlap=overlap, batch_size=batch, threads=1),
        )
        seconds = time.perf_counter() - t1
        assert not res.failed, res.failed
    finally:
        client.close()
        cluster.close()
    return start, seconds, tiles_per_raster(files[0], tile, overlap) * len(files)


def tiles_per_raster(path: Path, tile: int, overlap: int) -> int:
    """Tiles of the whole-raster tiling (:func:`core.raster.tiling.tile_windows`)."""
    from deeplandcover.core.raster.grid import RasterGrid
    from deeplandcover.core.raster.tiling import tile_windows

    g = RasterGrid.from_path(path)
    return len(tile_windows(g.width, g.height, tile, tile - overlap))


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its Markdown section."""
    ap = argparse.ArgumentParser(prog="python -m deeplandcover.tools.bench.batch", description=__doc__.split("\n")[0])
    ap.add_argument("--rasters", type=int, default=8)
    ap.add_argument("--size", type=int, default=1024, help="raster edge in pixels")
    ap.add_argument("--base-filters", type=int, default=8)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2, help="runs per worker count, best kept")
    args = ap.parse_args(argv)
    from deeplandcover.core.inference.engine import classify_pixels
    from deeplandcover.core.inference.options import ClassifyOptions

    t_all = time.perf_counter()
    load = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="dlc_bench_batch_"))
    try:
        files = [make_raster(work / f"r{i:02d}.tif", args.size) for i in range(args.rasters)]
        model, _ = make_model(work, args.base_filters, args.depth, args.tile, args.overlap)
        runs: dict[int, list[tuple[float, float, int]]] = {1: [], 2: []}
        for _ in range(args.repeats):  # interleaved, best of: the machine may be shared
            for w in (1, 2):
                runs[w].append(run_cluster(files, model, work / f"w{w}", w, args.tile, args.overlap, args.batch))
        (s1, t1, tiles), (s2, t2, _) = (min(runs[w], key=lambda r: r[1]) for w in (1, 2))
        t0 = time.perf_counter()
        for f in files:
            classify_pixels(
                [f],
                model,
                work / "seq" / f.name,
                ClassifyOptions(
                    tile_size=args.tile, overlap=args.overlap, batch_size=args.batch, threads=os.cpu_count() or 1
                ),
            )
        tseq = time.perf_counter() - t0
        raw = raw_seconds_per_tile(model, args.tile, args.batch)
        flops = conv_flops(args.base_filters, args.depth, 4, CLASSES, args.tile)
        big_flops = conv_flops(32, 4, 4, CLASSES, args.tile)  # the seed-002 size of U-Net, for the estimate
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mpx = args.rasters * args.size**2 / 1e6
    eff = t1 / (2 * t2)
    e2e_tile = t1 / tiles  # one worker, one thread: seconds per tile end to end
    host_tile = max(e2e_tile - raw, 0.0)
    cpu_gflops = flops / raw / 1e9
    # Europe at 10 m: pixels, then tiles of the same tiling (new pixels per tile = stride²).
    px = EUROPE_KM2 * 1e6 / 100.0
    stride = args.tile - args.overlap
    eu_tiles = px / stride**2
    gpu_flops = H100_FP32_TFLOPS * 1e12 * GPU_EFFICIENCY
    gpu_tile = flops / gpu_flops  # model seconds per tile on one GPU (assumed throughput)
    host_cores = 16  # assumed CPU cores feeding each GPU (read, normalise, blend, write)
    feed_tile = host_tile / host_cores
    per_gpu_tile = max(gpu_tile, feed_tile)
    cores_needed = host_tile / gpu_tile if gpu_tile > 0 else float("inf")

    print("## Batch inference on Dask (scaling 1 -> 2 workers, Europe estimate)\n")
    print(f"- command: `python -m deeplandcover.tools.bench.batch {' '.join(sys.argv[1:] if argv is None else argv)}`")
    print(f"- machine: {os.cpu_count()} cores, {cpu_model()}; date {dt.date.today().isoformat()}; CPU only (no GPU)")
    print(
        f"- data: {args.rasters} generated {args.size} x {args.size} 4-band uint16 GeoTIFFs ({mpx:.1f} Mpx); "
        f"U-Net `models/unet.py` base_filters {args.base_filters}, depth {args.depth}, {CLASSES} classes, ONNX; "
        f"tile {args.tile} px, overlap {args.overlap} px, batch {args.batch}; {tiles} tiles in all\n"
    )
    print("| run | seconds | Mpx/s | note |")
    print("| --- | --- | --- | --- |")
    print(f"| LocalCluster, 1 worker x 1 thread | {t1:.2f} | {mpx / t1:.2f} | start-up {s1:.1f} s excluded |")
    print(f"| LocalCluster, 2 workers x 1 thread | {t2:.2f} | {mpx / t2:.2f} | start-up {s2:.1f} s excluded |")
    print(
        f"| **efficiency T1 / (2 T2)** | **{eff:.2f}** | | speed-up {t1 / t2:.2f}x on {os.cpu_count()} cores; "
        f"best of {args.repeats}; load average at start {load:.1f} |"
    )
    print(
        f"| one process, rasters in sequence, ORT {os.cpu_count()} threads (no Dask) | {tseq:.2f} | "
        f"{mpx / tseq:.2f} | intra-op threading instead of workers |"
    )
    print("\nPer tile (measured, one CPU core):\n")
    print("| figure | value |")
    print("| --- | --- |")
    print(f"| end to end (read, normalise, model, blend, write) | {1e3 * e2e_tile:.1f} ms/tile |")
    print(f"| raw `session.run` (tiles in memory) | {1e3 * raw:.1f} ms/tile |")
    print(f"| host side (difference) | {1e3 * host_tile:.1f} ms/tile |")
    print(f"| model cost | {flops / 1e9:.2f} GFLOP/tile -> {cpu_gflops:.1f} GFLOP/s on one core |")
    print(
        "\nEstimate for Europe (written from the figures above; **GPU numbers are extrapolations, not "
        "measurements**):\n"
    )
    print(
        f"- area {EUROPE_KM2 / 1e6:.1f} million km² at 10 m = {px / 1e9:.0f} billion pixels = "
        f"{eu_tiles / 1e6:.2f} million tiles of {args.tile} px with {args.overlap} px overlap "
        f"(each tile adds {stride}² new pixels; one date, 4 bands; more bands cost reading time, not model time)."
    )
    print(f"- one CPU core end to end: {px / (stride**2) * e2e_tile / 3600:.0f} core-hours.")
    print(
        f"- assumed GPU: {GPU_EFFICIENCY:.0%} of the {H100_FP32_TFLOPS:.0f} TFLOP/s FP32 peak of an H100 "
        f"(NVIDIA datasheet) = {gpu_flops / 1e12:.0f} TFLOP/s effective, i.e. {gpu_flops / 1e9 / cpu_gflops:.0f}x "
        f"the measured core -> {1e3 * gpu_tile:.2f} ms/tile of model time. Feeding it needs the host side of "
        f"{cores_needed:.0f} cores at the measured {1e3 * host_tile:.1f} ms/tile; with an assumed "
        f"{host_cores} cores per GPU the host side gives {1e3 * feed_tile:.2f} ms/tile, so one GPU node does "
        f"{1e3 * per_gpu_tile:.2f} ms/tile ({'host-bound' if feed_tile > gpu_tile else 'GPU-bound'})."
    )
    big_tile = max(big_flops / gpu_flops, feed_tile)
    print(
        f"\n| GPUs (nodes of {host_cores} cores + 1 GPU) | this U-Net ({flops / 1e9:.1f} GFLOP/tile) | "
        f"U-Net base_filters 32, depth 4 ({big_flops / 1e9:.1f} GFLOP/tile, {1e3 * big_tile:.2f} ms/tile) |"
    )
    print("| --- | --- | --- |")
    for n in (1, 8, 64, 256):
        a, b = eu_tiles * per_gpu_tile / n, eu_tiles * big_tile / n
        print(f"| {n} | {a / 60:.1f} min | {b / 60:.1f} min |")
    print(
        f"\nAssumes perfect scaling across nodes (measured here: {eff:.2f} from 1 to 2 workers), input already "
        "on a shared file system fast enough (a 4-band uint16 10 m mosaic of Europe is ~"
        f"{px * 8 / 1e12:.1f} TB), one date of 4 bands (13 bands or T dates multiply the reading time), and the GPU "
        f"efficiency assumed above. Total benchmark time {time.perf_counter() - t_all:.0f} s."
    )


if __name__ == "__main__":
    main()
