"""``python -m deeplandcover.core.inference.batch``: Classify Pixels (Batch) from the command line (docs/batch.md).

Usage::

    python -m deeplandcover.core.inference.batch --model m.onnx --out out_dir [--scheduler tcp://host:8786] \
        [--workers N] [--block-size 4096] inputs...

The runner is imported under its package name, so that Dask pickles its task functions by reference, not from
``__main__``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

from deeplandcover.core.errors import DeepLandCoverError
from deeplandcover.core.feedback import PrintFeedback
from deeplandcover.core.inference.batch.run import BatchOptions, classify_batch
from deeplandcover.core.inference.options import ClassifyOptions


def parser() -> argparse.ArgumentParser:
    """The command line's arguments (``--help`` lists them)."""
    ap = argparse.ArgumentParser(
        prog="python -m deeplandcover.core.inference.batch",
        description="Classify many rasters (or blocks of a mosaic) with an ONNX model on "
        "a Dask cluster; writes one GeoTIFF per raster/block and a VRT.",
    )
    ap.add_argument("inputs", nargs="+", help="raster files, folders, globs (quoted) or .vrt mosaics")
    ap.add_argument("--model", required=True, help=".onnx model written by Train Model")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument(
        "--scheduler", default=None, help="Dask scheduler address, e.g. tcp://10.0.0.1:8786 (default: a local cluster)"
    )
    ap.add_argument("--workers", type=int, default=0, help="local workers (0: one per GPU, else per core)")
    ap.add_argument("--pattern", default="*.tif", help="file pattern for folders (default *.tif)")
    ap.add_argument("--block-size", type=int, default=0, help="block edge in pixels (0: whole rasters)")
    ap.add_argument("--tile-size", type=int, default=0, help="tile edge in pixels (0: the model's)")
    ap.add_argument("--overlap", type=int, default=-1, help="tile overlap in pixels (-1: the model's)")
    ap.add_argument("--batch-size", type=int, default=4, help="tiles per model call")
    ap.add_argument("--blending", choices=("gaussian", "center"), default="gaussian")
    ap.add_argument("--tta", action="store_true", help="test-time augmentation (8 dihedral transforms)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or tensorrt")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads per task (0: cores / workers)")
    ap.add_argument("--retries", type=int, default=2, help="retries of a task that failed unexpectedly")
    ap.add_argument("--overwrite", action="store_true", help="recompute finished outputs")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns 0 (all done), 1 (some tasks failed) or 2 (bad arguments/canceled)."""
    a = parser().parse_args(argv)
    fb = PrintFeedback()
    try:
        res = classify_batch(
            a.inputs,
            a.model,
            a.out,
            BatchOptions(
                scheduler=a.scheduler,
                n_workers=a.workers,
                block_size=a.block_size,
                overwrite=a.overwrite,
                pattern=a.pattern,
                retries=a.retries,
            ),
            ClassifyOptions(
                tile_size=a.tile_size or None,
                overlap=a.overlap,
                batch_size=a.batch_size,
                blending=a.blending,
                tta=a.tta,
                device=a.device,
                threads=a.threads,
            ),
            feedback=fb,
        )
    except DeepLandCoverError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted; finished outputs are kept and a re-run resumes.", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "vrt": str(res.vrt) if res.vrt else None,
                "computed": len(res.computed),
                "skipped": len(res.skipped),
                "empty": len(res.empty),
                "failed": [asdict(f) for f in res.failed],
                "seconds": round(res.seconds, 2),
            },
            indent=1,
        )
    )
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
