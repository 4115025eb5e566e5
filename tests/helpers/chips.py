"""Chip-test helpers: a tiny synthetic chip-folder writer for training tests (per the contract in
core/chips/manifest.py) and :func:`rasterize_full`, whole-grid labels of a label source.

The scene is a mosaic of class patches; each class has its own mean spectrum plus noise, so a model
can learn it. Chips are cut on a regular grid; blocks group ``block`` x ``block`` chips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from deeplandcover.core.chips.labels import LabelSource
from deeplandcover.core.chips.manifest import BandStats, ChipRecord, Manifest
from deeplandcover.core.classes import ClassInfo

ORIGIN = (500000.0, 5800000.0)
PIXEL = 10.0


def _write(path: Path, data: np.ndarray, transform, nodata=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[-1],
        height=data.shape[-2],
        count=data.shape[0],
        dtype=data.dtype,
        crs="EPSG:32633",
        transform=transform,
        nodata=nodata,
    ) as ds:
        ds.write(data)


def scene(rows: int, cols: int, bands: int, class_values, seed: int, patch: int = 8, shift: float = 0.0):
    """``(bands, rows, cols) float32`` image and ``(rows, cols) uint8`` labels."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, len(class_values), size=(-(-rows // patch), -(-cols // patch)))
    idx = np.kron(cls, np.ones((patch, patch), dtype=np.int64))[:rows, :cols]
    means = np.linspace(100, 900, len(class_values))[:, None] * (1 + np.arange(bands)[None, :] * 0.3)
    img = means[idx].transpose(2, 0, 1) + rng.normal(0, 40, (bands, rows, cols)) + shift
    return img.astype(np.float32), np.asarray(class_values, dtype=np.uint8)[idx]


def make_chip_folder(
    folder: str | Path,
    kind: str = "single",
    grid: tuple[int, int] = (4, 4),
    tile: int = 16,
    bands: int = 3,
    class_values=(1, 2, 3),
    time_steps: int = 3,
    block: int = 2,
    seed: int = 0,
    nodata: float | None = -1.0,
    stride: int | None = None,
) -> Manifest:
    """Write a chip folder (``images/``, ``images2/`` for pairs, ``labels/``, ``manifest.json``)."""
    folder = Path(folder)
    stride = stride or tile
    h = stride * (grid[0] - 1) + tile
    w = stride * (grid[1] - 1) + tile
    t = time_steps if kind == "sequence" else 1
    imgs, lab = [], None
    for d in range(t):
        img, lab0 = scene(h, w, bands, class_values, seed, shift=20.0 * d)
        lab = lab0 if lab is None else lab
        imgs.append(img)
    img = np.concatenate(imgs, axis=0)  # time-major T*C
    if nodata is not None:
        img[:, :3, :5] = nodata  # a corner of nodata
    img2 = scene(h, w, bands, class_values, seed, shift=50.0)[0] if kind == "pair" else None
    lab = lab.copy()
    lab[-2:, -2:] = 255
    chips = []
    for r in range(grid[0]):
        for c in range(grid[1]):
            cid = f"{len(chips):09d}"
            y, x = r * stride, c * stride
            tr = from_origin(ORIGIN[0] + x * PIXEL, ORIGIN[1] - y * PIXEL, PIXEL, PIXEL)
            _write(folder / "images" / f"{cid}.tif", img[:, y : y + tile, x : x + tile], tr, nodata)
            if img2 is not None:
                _write(folder / "images2" / f"{cid}.tif", img2[:, y : y + tile, x : x + tile], tr, nodata)
            lc = lab[y : y + tile, x : x + tile]
            _write(folder / "labels" / f"{cid}.tif", lc[None], tr, 255)
            vals, counts = np.unique(lc[lc != 255], return_counts=True)
            chips.append(
                ChipRecord(
                    cid,
                    f"images/{cid}.tif",
                    f"labels/{cid}.tif",
                    [x, y, tile, tile],
                    list(tr)[:6],
                    block=f"{(y // (block * tile))}_{(x // (block * tile))}",
                    image2=f"images2/{cid}.tif" if img2 is not None else None,
                    class_counts={str(int(v)): int(n) for v, n in zip(vals, counts)},
                )
            )

    def stats(a):
        out = []
        per = a.reshape(t, bands, -1) if kind == "sequence" else a.reshape(1, bands, -1)
        for b in range(bands):
            v = per[:, b].ravel()
            v = v[v != nodata] if nodata is not None else v
            out.append(BandStats(f"B{b + 1}", float(v.min()), float(v.max()), float(v.mean()), float(v.std()), v.size))
        return out

    m = Manifest(
        kind=kind,
        crs_wkt="EPSG:32633",
        pixel_size=[PIXEL, PIXEL],
        tile_size=tile,
        stride=stride,
        bands=[f"B{b + 1}" for b in range(bands)],
        band_stats=stats(img),
        classes=[
            ClassInfo(v, f"class{v}", f"#{40 * i:02x}{200 - 40 * i:02x}5a", 0, 0) for i, v in enumerate(class_values)
        ],
        chips=chips,
        bands2=[f"B{b + 1}" for b in range(bands)] if kind == "pair" else [],
        band_stats2=stats(img2) if img2 is not None else [],
        time_steps=[f"2020-0{d + 1}-01" for d in range(t)] if kind == "sequence" else [],
        nodata=nodata,
        block_size=block * tile,
    )
    m.save(folder)
    return m


def rasterize_full(source: LabelSource, window: Window | None = None) -> np.ndarray:
    """Labels of the whole grid (or a window) in one call, as :meth:`LabelSource.read` gives them per window.

    Returns:
        ``(H, W)`` uint8.
    """
    window = window or Window(0, 0, source.grid.width, source.grid.height)
    with source:
        return source.read(window)
