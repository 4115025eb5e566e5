"""Benchmark of Classify Pixels (:func:`core.inference.engine.classify_pixels`) on a generated raster.

Run: ``python -m deeplandcover.tools.bench.inference [--size 8192] [--quick] [--base-filters 8] [--depth 3]``.
Prints a Markdown section (command, machine, date, figures):

(a) megapixels/s end to end (read, normalise, ONNX Runtime, blend, write) on a ``size`` x ``size``
    4-band uint16 raster with a U-Net from :mod:`models.unet` exported by :func:`core.training.onnx_export.export_onnx`;
(b) the ratio to raw ``session.run`` over the same number of tiles already in memory (same batch,
    same threads, same session options); (a) and (b) run alternately ``--repeats`` times, best kept;
(c) peak RSS of the end-to-end run at ``size``, and the growth from ``size`` to ``2 x size`` measured
    with a tiny U-Net (base 4, depth 2) so that the ``2 x size`` run stays short (skipped with ``--quick``);
(d) the naive whole-array approach (read all bands into memory, one eager PyTorch forward pass) against
    the engine on a 2048 x 2048 crop.

Every measurement runs in its own subprocess so peak RSS (``VmHWM``, see :func:`_maxrss_mb`) is per run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from deeplandcover.tools.bench.common import BANDS, CLASSES, cpu_model, make_model, make_raster


def _maxrss_mb() -> float:
    """Peak RSS of this process (MiB): ``VmHWM`` of ``/proc/self/status``, else ``ru_maxrss``.

    Not ``ru_maxrss`` on Linux: it survives ``execve``, so a worker spawned by a parent that once held
    more memory (here: the parent that just generated the 16384² raster) reports the parent's peak.
    That made an earlier version of this benchmark report +11.1 % growth (502 -> 558 MiB) where the
    worker itself never grew by that much. ``VmHWM`` belongs to the worker's own address space.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux, bytes on macOS


# -------------------------------------------------------------------------------- workers
def worker_engine(a: dict) -> dict:
    """End-to-end classify_pixels run."""
    from deeplandcover.core.inference.engine import classify_pixels
    from deeplandcover.core.inference.options import ClassifyOptions

    t = time.perf_counter()
    res = classify_pixels(
        [a["raster"]],
        a["model"],
        a["out"],
        ClassifyOptions(
            tile_size=a["tile"],
            overlap=a["overlap"],
            batch_size=a["batch"],
            threads=a["threads"],
            device=a.get("device", "cpu"),
        ),
    )
    return {
        "seconds": time.perf_counter() - t,
        "mps": res.megapixels_per_s,
        "tiles_run": res.tiles_run,
        "provider": res.provider,
        "buffer_mb": res.buffer_bytes / 2**20,
        "maxrss_mb": _maxrss_mb(),
    }


def worker_raw(a: dict) -> dict:
    """Raw ``session.run`` over ``tiles`` tiles already in memory (same batch, threads, options)."""
    from deeplandcover.core.inference.session import open_session

    sess, _ = open_session(a["model"], a.get("device", "cpu"), a["threads"])
    name, b, t = sess.get_inputs()[0].name, a["batch"], a["tile"]
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(b, len(BANDS), t, t)).astype(np.float32) for _ in range(3)]
    sess.run(None, {name: batches[0][:2]})  # same warm-up as the engine's probe
    n_runs = -(-a["tiles"] // b)
    start = time.perf_counter()
    for i in range(n_runs):
        x = batches[i % 3] if i < n_runs - 1 else batches[i % 3][: a["tiles"] - b * (n_runs - 1)]
        sess.run(None, {name: x})
    return {"seconds": time.perf_counter() - start, "maxrss_mb": _maxrss_mb()}


def worker_naive(a: dict) -> dict:
    """Read the whole raster, normalise, one eager PyTorch forward pass (no tiling), argmax."""
    import rasterio
    import torch

    from deeplandcover.models.unet import UNet

    torch.set_num_threads(a["threads"])
    t = time.perf_counter()
    with rasterio.open(a["raster"]) as ds:
        x = (ds.read().astype(np.float32) - 1000.0) / 400.0
    net = UNet(len(BANDS), CLASSES, base_filters=a["base_filters"], depth=a["depth"]).eval()
    net.load_state_dict(torch.load(a["pt"]))
    with torch.inference_mode():
        cls = net(torch.from_numpy(x)[None]).argmax(1)[0].numpy().astype(np.uint8)
    return {"seconds": time.perf_counter() - t, "pixels": int(cls.size), "maxrss_mb": _maxrss_mb()}


WORKERS = {"engine": worker_engine, "raw": worker_raw, "naive": worker_naive}


def _spawn(kind: str, args: dict) -> dict:
    cmd = [sys.executable, "-m", "deeplandcover.tools.bench.inference", "--worker", kind, json.dumps(args)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------- main
LOAD_AT_START = os.getloadavg()[0]


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or one worker) and print a Markdown section."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=8192, help="raster edge in pixels (default 8192)")
    ap.add_argument("--quick", action="store_true", help="skip the 2 x size memory run")
    ap.add_argument("--base-filters", type=int, default=16, help="U-Net filters of the first level (seed 002: 32)")
    ap.add_argument("--depth", type=int, default=4, help="U-Net poolings")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--naive-size", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=2, help="engine/raw runs for figures (a) and (b), best kept")
    ap.add_argument("--mem-repeats", type=int, default=2, help="runs of each size for the memory growth figure")
    ap.add_argument(
        "--raw-tiles",
        type=int,
        default=0,
        help="tiles timed for the raw session.run figure (0: as many as the engine ran)",
    )
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker[0]](json.loads(args.worker[1]))))
        return
    tmp = Path(tempfile.mkdtemp(prefix="dlc_bench_inference_"))
    try:
        _bench(args, tmp, argv)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _bench(args: argparse.Namespace, tmp: Path, argv: list[str] | None) -> None:
    t0 = time.perf_counter()
    model, pt = make_model(tmp, args.base_filters, args.depth, args.tile, args.overlap)
    tiny, _ = make_model(tmp, 4, 2, args.tile, args.overlap, name="tiny")
    common = {
        "model": str(model),
        "tile": args.tile,
        "overlap": args.overlap,
        "batch": args.batch,
        "threads": args.threads,
    }
    big = make_raster(tmp / "big.tif", args.size)
    gen_s = time.perf_counter() - t0
    runs: list[tuple[dict, dict]] = []
    for _ in range(args.repeats):  # engine and raw alternately, best of each: a slow spell hits both
        e = _spawn("engine", {**common, "raster": str(big), "out": str(tmp / "big_cls.tif")})
        raw_tiles = min(e["tiles_run"], args.raw_tiles or e["tiles_run"])
        runs.append((e, _spawn("raw", {**common, "tiles": raw_tiles})))
    e = min((r[0] for r in runs), key=lambda r: r["seconds"])
    raw = min((r[1] for r in runs), key=lambda r: r["seconds"])
    raw_s = raw["seconds"] * e["tiles_run"] / raw_tiles
    mems: list[tuple[dict, dict]] = []
    if not args.quick:  # both sizes alternately, repeated: one pair of peaks is noisy (allocator, timing)
        (tmp / "big_cls.tif").unlink(missing_ok=True)
        huge = make_raster(tmp / "huge.tif", 2 * args.size)
        tiny_args = {**common, "model": str(tiny)}
        for _ in range(args.mem_repeats):
            mems.append(
                (
                    _spawn("engine", {**tiny_args, "raster": str(big), "out": str(tmp / "m1.tif")}),
                    _spawn("engine", {**tiny_args, "raster": str(huge), "out": str(tmp / "m2.tif")}),
                )
            )
        huge.unlink()
    small = make_raster(tmp / "small.tif", args.naive_size)
    es = _spawn("engine", {**common, "raster": str(small), "out": str(tmp / "small_cls.tif")})
    nv = _spawn(
        "naive", {**common, "raster": str(small), "pt": str(pt), "base_filters": args.base_filters, "depth": args.depth}
    )
    _report(args, argv, gen_s, runs, e, raw, raw_tiles, raw_s, mems, es, nv, time.perf_counter() - t0)


def _report(args, argv, gen_s, runs, e, raw, raw_tiles, raw_s, mems, es, nv, total) -> None:
    mp = args.size**2 / 1e6
    print("## Classify Pixels (tiled ONNX Runtime inference)\n")
    print(
        f"- command: `python -m deeplandcover.tools.bench.inference {' '.join(sys.argv[1:] if argv is None else argv)}`"
    )
    print(
        f"- machine: {os.cpu_count()} cores, {cpu_model()}; date {dt.date.today().isoformat()}; "
        f"execution provider {e['provider']}, {args.threads} threads"
    )
    print(
        f"- model: U-Net from `models/unet.py` (base_filters {args.base_filters}, depth {args.depth}, random "
        f"weights, {CLASSES} classes) exported with `core.training.onnx_export.export_onnx`; tile {args.tile} px, overlap "
        f"{args.overlap} px, batch {args.batch}, Gaussian blending"
    )
    print(
        f"- data: generated {args.size} x {args.size} 4-band uint16 GeoTIFF (deflate), written block by block "
        f"({gen_s:.0f} s with the exports)\n"
    )
    print("| figure | value |")
    print("| --- | --- |")
    secs = ", ".join(f"{r[0]['seconds']:.1f}" for r in runs)
    print(
        f"| (a) end to end, {args.size}² ({mp:.0f} Mpx, {e['tiles_run']} tiles), best of {len(runs)} | "
        f"{e['seconds']:.1f} s, **{e['mps']:.2f} Mpx/s** (runs: {secs} s) |"
    )
    scaled = f", scaled to {e['tiles_run']}" if raw_tiles != e["tiles_run"] else ""
    print(
        f"| (b) raw `session.run` on {raw_tiles} of the same tiles in memory{scaled}, best "
        f"of {len(runs)} (runs alternate with (a)) | "
        f"{raw_s:.1f} s, {mp / raw_s:.2f} Mpx/s; ratio engine/raw throughput **{raw_s / e['seconds']:.2f}** "
        "(target >= 0.85) |"
    )
    print(
        f"| (c) peak RSS at {args.size}², this U-Net | **{e['maxrss_mb']:.0f} MiB** (blend buffers "
        f"{e['buffer_mb']:.0f} MiB) |"
    )
    if mems:
        growths = [100 * (m2["maxrss_mb"] / m1["maxrss_mb"] - 1) for m1, m2 in mems]
        pairs = "; ".join(
            f"{m1['maxrss_mb']:.0f} -> {m2['maxrss_mb']:.0f} MiB ({g:+.1f} %)" for (m1, m2), g in zip(mems, growths)
        )
        m1, m2 = mems[0]
        print(
            f"| (c) peak RSS, tiny U-Net (base 4, depth 2), {args.size}² vs {2 * args.size}², {len(mems)} runs "
            f"each | {pairs}; worst growth **{max(growths):+.1f} %** (targets <= 1536 MiB, < 10 %); blend "
            f"buffers {m1['buffer_mb']:.0f} vs {m2['buffer_mb']:.0f} MiB; {m1['mps']:.1f} vs {m2['mps']:.1f} Mpx/s |"
        )
    else:
        print(f"| (c) peak RSS at {2 * args.size}² | skipped (--quick) |")
    print(
        f"| (d) naive whole array, {args.naive_size}² (read all, eager PyTorch, one pass) | {nv['seconds']:.1f} s, "
        f"{args.naive_size**2 / 1e6 / nv['seconds']:.2f} Mpx/s, peak RSS **{nv['maxrss_mb']:.0f} MiB** |"
    )
    print(
        f"| (d) this engine on the same {args.naive_size}² raster | {es['seconds']:.1f} s, {es['mps']:.2f} Mpx/s, "
        f"peak RSS **{es['maxrss_mb']:.0f} MiB** |"
    )
    print(
        f"\nTotal benchmark time {total:.0f} s. Engine times include opening the session, the probe run, "
        "reading/normalising (reader thread), blending and the deflate GeoTIFF writes (writer thread); the raw "
        "figure is `session.run` alone on pre-built batches. Each run is a fresh subprocess (peak RSS = "
        f"`VmHWM` of the worker's /proc/self/status; `ru_maxrss` would include the parent's peak). Load average when the benchmark started: {LOAD_AT_START:.1f}."
    )


if __name__ == "__main__":
    main()
