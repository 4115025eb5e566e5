"""Helpers for the batch-inference tests: a fault-injecting Dask worker plugin and small real inputs.

Importable by the Dask worker processes (they inherit pytest's ``sys.path``, which holds ``tests/``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from distributed import WorkerPlugin


class FaultPlugin(WorkerPlugin):
    """Makes the first attempt of chosen tasks fail on the worker: raise an error, or kill the worker process.

    The first attempt of each task named in ``names`` whose output lies in ``out_dir`` writes a marker file
    ``<marker_dir>/<name>`` holding the worker's PID, then either raises ``RuntimeError`` (``mode="raise"``)
    or ends the worker process at once with ``os._exit`` (``mode="kill"``: the nanny restarts it and the
    scheduler reschedules the task). Later attempts find the marker and run normally, so the outcome is
    deterministic. Other tasks are untouched.
    """

    def __init__(self, marker_dir: str, out_dir: str, names: list[str], mode: str) -> None:
        self.marker_dir, self.out_dir, self.names, self.mode = marker_dir, out_dir, list(names), mode

    def setup(self, worker) -> None:
        # Patch the function run_task looks up at call time (a patched run_task could be hidden by
        # Dask's cache of deserialised task functions).
        import deeplandcover.core.inference.engine as inference

        original = getattr(inference.classify_pixels, "__wrapped_original__", inference.classify_pixels)
        plugin = self

        def classify_pixels(inputs, model, out_path, *args, **kwargs):
            out = Path(out_path)
            name = next((n for n in plugin.names if out.stem == n or out.stem.startswith(f".{n}.halo")), None)
            marker = Path(plugin.marker_dir) / str(name)
            if name and str(out.parent) == plugin.out_dir and not marker.exists():
                marker.write_text(str(os.getpid()))
                if plugin.mode == "kill":
                    os._exit(1)
                raise RuntimeError(f"injected failure of {name}")
            return original(inputs, model, out_path, *args, **kwargs)

        classify_pixels.__wrapped_original__ = original
        inference.classify_pixels = classify_pixels


def cut_scene(src: Path, out_dir: Path, cols: int, rows: int, width: int, height: int) -> list[Path]:
    """Cut a ``cols`` x ``rows`` grid of ``width`` x ``height`` windows from the top-left of ``src`` into GeoTIFFs."""
    import rasterio
    from rasterio.windows import Window

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with rasterio.open(src) as ds:
        for r in range(rows):
            for c in range(cols):
                win = Window(c * width, r * height, width, height)
                prof = {
                    **ds.profile,
                    "width": width,
                    "height": height,
                    "transform": ds.window_transform(win),
                    "tiled": False,
                }
                prof.pop("blockxsize", None), prof.pop("blockysize", None)
                p = out_dir / f"part_{r}_{c}.tif"
                with rasterio.open(p, "w", **prof) as o:
                    o.write(ds.read(window=win))
                    o.descriptions = ds.descriptions
                paths.append(p)
    return paths


def band_stats(path: Path) -> tuple[list[str], list[float], list[float], np.ndarray]:
    """(band descriptions, per-band mean, per-band std, the ``(C, H, W)`` array) of a small raster."""
    import rasterio

    with rasterio.open(path) as ds:
        a = ds.read()
        names = list(ds.descriptions)
    flat = a.reshape(a.shape[0], -1).astype(np.float64)
    return names, [float(v) for v in flat.mean(1)], [float(v) + 1e-6 for v in flat.std(1)], a
