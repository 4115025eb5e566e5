"""Does a fixed spatial ONNX input size (what Deepness needs) cost Classify Pixels anything?

Run: ``python -m deeplandcover.tools.bench.fixed_shape [--size 1536] [--repeats 3]``. A seeded U-Net
(:mod:`models.unet`, base 16, depth 3, 4 bands, 6 classes) is exported twice, with dynamic height/width
(:func:`core.training.onnx_export.export_onnx`) and with height/width fixed to the card's tile size
(:func:`core.training.onnx_export.export_deepness_onnx`); both classify the same generated raster,
alternating A/B, best of ``--repeats``. Also runs the dynamic model at 4x the tile size, which a
fixed-size model cannot do (its tile size replaces TILE_SIZE). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from deeplandcover.tools.bench.common import cpu_model, make_model, make_raster


def _models(folder: Path, tile: int) -> tuple[Path, Path]:
    """The dynamic-size model and its Deepness copy (fixed to ``tile``), as Train Model exports them."""
    from deeplandcover.core.training.onnx_export import deepness_path

    dyn, _ = make_model(folder, 16, 3, tile, tile // 4, name="dynamic")
    return dyn, deepness_path(dyn)


def main(argv: list[str] | None = None) -> None:
    """Time dynamic vs fixed input size (see the module docstring)."""
    from deeplandcover.core.inference.engine import classify_pixels
    from deeplandcover.core.inference.options import ClassifyOptions

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1536)
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raster = make_raster(folder / "r.tif", a.size)
        dyn, fixed = _models(folder, a.tile)
        runs = {
            f"dynamic H/W, tile {a.tile}": (dyn, a.tile),
            f"fixed {a.tile}x{a.tile}, tile {a.tile}": (fixed, a.tile),
            f"dynamic H/W, tile {4 * a.tile}": (dyn, 4 * a.tile),
        }
        best: dict[str, float] = {}
        for _ in range(a.repeats):
            for name, (model, tile) in runs.items():
                t = time.perf_counter()
                classify_pixels([raster], model, folder / "c.tif", ClassifyOptions(tile_size=tile, device="cpu"))
                best[name] = min(best.get(name, 1e9), time.perf_counter() - t)
    print(
        f"`python -m deeplandcover.tools.bench.fixed_shape --size {a.size} --tile {a.tile}`; {cpu_model()}, "
        f"{os.cpu_count()} cores; {a.size}x{a.size} px, 4 bands, U-Net base 16 depth 3, best of {a.repeats}\n"
    )
    print("| model, tile | seconds | Mpx/s |\n| --- | --- | --- |")
    for name, s in best.items():
        print(f"| {name} | {s:.2f} | {a.size**2 / s / 1e6:.2f} |")


if __name__ == "__main__":
    main()
