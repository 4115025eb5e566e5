"""Class polygons of a class raster: agreement of polygon areas with the raster's class areas, and time.

Run: ``python -m deeplandcover.tools.bench.polygons CLASSES.tif [--block-rows 256]``, e.g. on the demo's
``demo_output/landcover/landcover_classified.tif``. Polygonises the raster twice, in strips of ``--block-rows``
rows and in one strip (the whole raster), with :func:`core.raster.polygons.polygonize_classes`, and once with a
simplification tolerance of half a pixel; prints per class the raster area and the geometric area of the
polygons (shapely), and the features and seconds of each run, as Markdown.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from deeplandcover.tools.bench.common import cpu_model


def main(argv: list[str] | None = None) -> None:
    """See the module docstring."""
    import geopandas as gpd
    import rasterio

    from deeplandcover.core.classes import class_table_for_raster
    from deeplandcover.core.raster.polygons import PolygonOptions, polygonize_classes

    ap = argparse.ArgumentParser()
    ap.add_argument("raster", type=Path)
    ap.add_argument("--block-rows", type=int, default=256)
    a = ap.parse_args(argv)
    with rasterio.open(a.raster) as ds:
        img, nodata, px = ds.read(1), ds.nodata, abs(ds.transform.a * ds.transform.e)
    classes = list(class_table_for_raster(a.raster).values())
    runs = {
        f"strips of {a.block_rows} rows": PolygonOptions(block_rows=a.block_rows),
        "one strip": PolygonOptions(block_rows=max(2, img.shape[0])),
        f"strips of {a.block_rows} rows, simplify {px**0.5 / 2:g}": PolygonOptions(
            block_rows=a.block_rows, simplify=px**0.5 / 2
        ),
    }
    print(f"`python -m deeplandcover.tools.bench.polygons {a.raster.name} --block-rows {a.block_rows}`; {cpu_model()}")
    print(f"\n{img.shape[1]} x {img.shape[0]} px, {len(classes)} classes\n")
    frames = {}
    with tempfile.TemporaryDirectory() as tmp:
        print("| run | features | seconds |\n| --- | --- | --- |")
        for i, (name, o) in enumerate(runs.items()):
            t = time.perf_counter()
            res = polygonize_classes(a.raster, Path(tmp) / f"p{i}.gpkg", classes, o)
            print(f"| {name} | {res.features} | {time.perf_counter() - t:.2f} |")
            frames[name] = gpd.read_file(res.path)
    first, _, simple = frames.values()
    print(
        "\n| class | raster m² | polygons m² (geometry) | diff % | simplified m² | diff % |\n| --- | --- | --- | --- | --- | --- |"
    )
    worst = 0.0
    for c in classes:
        raster_m2 = float((img == c.value).sum()) * px if nodata != c.value else 0.0
        if raster_m2 == 0:
            continue
        poly = float(first.loc[first["value"] == c.value].area.sum())
        simp = float(simple.loc[simple["value"] == c.value].area.sum())
        d1, d2 = 100 * (poly - raster_m2) / raster_m2, 100 * (simp - raster_m2) / raster_m2
        worst = max(worst, abs(d1))
        print(f"| {c.name} | {raster_m2:.0f} | {poly:.0f} | {d1:+.4f} | {simp:.0f} | {d2:+.4f} |")
    print(f"\nlargest |difference| of the unsimplified polygons: {worst:.4f} %")
    assert np.isfinite(worst)


if __name__ == "__main__":
    main()
