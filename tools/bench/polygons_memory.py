"""Peak memory of the class polygons on a generated N x N class raster.

Run: ``python -m deeplandcover.tools.bench.polygons_memory N FOLDER [cells]`` (one size per process, so
the peak RSS, ``VmHWM``, is this size's). The raster (uint8, 4 classes, 10 m pixels) is a smooth periodic
field written block by block: ``sin(x/97) + cos(y/131) + sin((x+y)/41)/2`` or, with ``cells``,
``2 sin(x/97) cos(y/131)``, digitised at -0.8, 0, 0.8; polygonised in strips of 512 rows by
:func:`core.raster.polygons.polygonize_classes`. Prints polygons, seconds and peak RSS.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    """See the module docstring."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from deeplandcover.core.classes import ClassInfo
    from deeplandcover.core.raster.polygons import PolygonOptions, polygonize_classes

    args = argv if argv is not None else sys.argv[1:]
    n, out, cells = int(args[0]), Path(args[1]), len(args) > 2
    out.mkdir(parents=True, exist_ok=True)
    raster = out / f"classes_{n}.tif"
    prof = dict(
        driver="GTiff", width=n, height=n, count=1, dtype="uint8", crs="EPSG:32633",
        transform=from_origin(500000, 6000000, 10, 10), tiled=True, compress="deflate",
    )  # fmt: skip
    y, x = np.arange(512)[:, None], np.arange(n)[None, :]
    with rasterio.open(raster, "w", **prof) as ds:
        for r0 in range(0, n, 512):
            yy = y + r0
            f = (
                2 * np.sin(x / 97) * np.cos(yy / 131)
                if cells
                else np.sin(x / 97) + np.cos(yy / 131) + np.sin((x + yy) / 41) / 2
            )
            ds.write(np.digitize(f, [-0.8, 0, 0.8]).astype(np.uint8) + 1, 1, window=Window(0, r0, n, 512))
    t = time.perf_counter()
    classes = [ClassInfo(v, f"class {v}") for v in (1, 2, 3, 4)]
    res = polygonize_classes(raster, out / f"polygons_{n}.gpkg", classes, PolygonOptions(block_rows=512))
    seconds = time.perf_counter() - t
    with open("/proc/self/status", encoding="ascii") as fh:
        hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
    print(
        f"{n} x {n} ({'cells' if cells else 'bands'}): {res.features} polygons, {seconds:.1f} s, peak RSS {hwm / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
