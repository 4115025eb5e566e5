"""Tiled, streamed ONNX Runtime inference: a raster (or a time series, or a pair) in, a class map out.

Counterpart of ArcGIS "Classify Pixels Using Deep Learning" (arguments tile_size, padding,
batch_size, test_time_augmentation; Esri, "Multi-class change detection using image segmentation deep
learning models", ArcGIS API for Python sample notebook) with the overlapping-patch inference of
"Deep Neural Networks for Automatic Extraction of Features in Time Series Optical Satellite Images"
(Int. Arch. Photogramm. Remote Sens. Spatial Inf. Sci., XLIII-B2-2020, 1529-1535, 2020): large patches,
overlap between neighbours "to avoid the border effect".

How it works:

1. The model card (:mod:`core.modelcard`) says which bands, in which order, with which normalisation,
   and which class value each output channel predicts; :mod:`core.inference.bands` matches them to
   the raster bands.
2. :func:`core.inference.model.load_model` opens the model (:class:`core.inference.model.InferenceModel`:
   session, card, input shape, batch policy, classes). Tiles come from one
   :class:`core.raster.tiling.TileGrid` over the extent window (edge tiles snapped flush, ``stride =
   tile_size - overlap``, pixels). A reader thread (:class:`core.inference.reader.TileReader`) reads, masks
   and normalises the next batches while ``session.run`` computes.
3. Tile probabilities are blended by :class:`core.inference.blending.TileBlender` with smooth Gaussian
   cross-fade weights (``"gaussian"``) or the ArcGIS-like centre crop (``"center"``: each pixel
   from the one tile whose centre region holds it). Tiles are visited row by row and, within a
   row, column by column, so columns become final as soon as the next tile has started; only the
   vertical overlap is carried to the next row.
4. Finished chunks are normalised by the summed weights, argmax'ed and written by a writer thread
   (:class:`core.inference.writer.ChunkWriter`) into tiled DEFLATE GeoTIFFs opened once inside
   :func:`core.raster.io.atomic_output`. Memory: ``(K + 1) x overlap x width x 4`` bytes of carry
   buffer + ``K x tile^2`` working buffers, the batches in flight, the ONNX Runtime arena and a
   bounded GDAL block cache; it does not grow with the raster height and barely with its width.

Never imports torch or :mod:`models`: numpy, rasterio and onnxruntime only (geopandas lazily, for a
mask given as a file).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.transform
from rasterio.windows import Window

from .. import classes as styles
from .. import provenance
from ..errors import EmptyAreaError
from ..feedback import Feedback, check_canceled, ensure_feedback
from ..preprocessing.dihedral import N_TRANSFORMS, dihedral
from ..raster.grid import (
    RasterGrid,
    pixel_area_m2,
    window_from_bounds_clipped,
)
from ..raster.polygons import polygonize_classes
from ..raster.tiling import TileGrid
from .bands import plan_sources
from .blending import BlendWeights, TileBlender, TileSlot, blend_weights, visiting_order
from .model import InferenceModel, load_model
from .options import ClassifyOptions, InferenceResult, OutputPaths
from .pixel_size import check_pixel_size
from .reader import (
    ReadArea,
    TileReader,
    check_mask_overlap,
    input_paths,
    load_mask,
    open_cloud_policy,
    open_inputs,
)
from .writer import NODATA, ChunkWriter, open_outputs, write_area_table


def _prefetch(fn, items: Sequence, depth: int, pool: cf.Executor) -> Iterator:
    """Yield ``fn(item)`` in order, keeping ``depth`` calls running ahead in ``pool``."""
    q: collections.deque = collections.deque()
    it = iter(items)
    for item in it:
        q.append(pool.submit(fn, item))
        if len(q) > depth:
            break
    while q:
        yield q.popleft().result()
        nxt = next(it, None)
        if nxt is not None:
            q.append(pool.submit(fn, nxt))


def classify_pixels(
    inputs: Sequence[str | os.PathLike],
    model: str | os.PathLike | InferenceModel,
    outputs: str | os.PathLike | OutputPaths,
    options: ClassifyOptions | None = None,
    *,
    feedback: Feedback | None = None,
) -> InferenceResult:
    """Classify a raster (or series, or pair) with an ONNX model, tile by tile, streamed.

    Counterpart of ArcGIS "Classify Pixels Using Deep Learning". Every raster and vector output carries the
    run's provenance (:mod:`core.provenance`: plugin version, model file name and SHA-256, architecture,
    options, tile size and overlap used, date) as GeoTIFF tags or GeoPackage layer metadata.
    ``options.cog`` writes the rasters as Cloud-Optimised GeoTIFFs.

    Args:
        inputs: one raster (BCHW model), T rasters on one grid (BTCHW model, T = ``card.time_steps``),
            or two rasters (task ``"change"``: dates stacked as 2C channels).
        model: ``.onnx`` file with our model card or Deepness metadata (or without metadata), a STAC
            Item with the MLM extension whose ``mlm:model`` asset is one (:func:`core.stac.model_from_item`),
            a catalogue name (``"dynamicworld"``, :mod:`core.inference.catalog`; made on first use), or a
            model already opened by :func:`core.inference.model.load_model` (then ``options.device``,
            ``threads`` and ``input_scale`` were those of its loading).
        outputs: the class raster (GeoTIFF, uint8 class values, nodata 255, colour table; QML beside it), or
            an :class:`OutputPaths` with the optional probability raster, area table and class polygons.
        options: how to classify (:class:`ClassifyOptions`; None: its defaults).
        feedback: progress, cancel and log.

    Returns:
        :class:`InferenceResult`.

    Raises:
        ModelFileError: missing/corrupt model, no card and no Deepness keys, inconsistent output.
        BandMismatchError: bands of the raster do not match the model's (message lists both).
        GridMismatchError: several inputs not on one grid.
        NoOverlapError: ``extent`` (or the mask) outside the raster.
        InputError: bad options, wrong number of dates, nothing valid to classify.
        CanceledError: canceled; no output file is left behind.
    """
    opts = options if options is not None else ClassifyOptions()
    fb = ensure_feedback(feedback)
    paths = input_paths(inputs, opts)
    if isinstance(model, InferenceModel):
        m = model
    else:
        m = load_model(model, opts.device, opts.threads, opts.input_scale, feedback=fb)
    outs = outputs if isinstance(outputs, OutputPaths) else OutputPaths(Path(outputs))
    warnings = list(m.warnings)
    with contextlib.ExitStack() as stack:
        ins = open_inputs(stack, paths, m.card, opts.resample, fb, warnings)
        sources = plan_sources(m.card, paths, ins.names, opts.band_map)
        tile, overlap = m.tiling(opts.tile_size, opts.overlap, warnings)
        grid = ins.grid
        ext = window_from_bounds_clipped(grid, opts.extent) if opts.extent else Window(0, 0, grid.width, grid.height)
        out_grid = RasterGrid(grid.crs, grid.window_transform(ext), int(ext.width), int(ext.height))
        geoms = load_mask(opts.mask, grid.crs) if opts.mask is not None else None
        if geoms is not None:
            check_mask_overlap(geoms, out_grid)
        check_pixel_size(m.card, grid, warnings)
        for w in warnings:
            fb.warning(w)
        m.probe(sources, tile, opts.batch_size)
        fb.info(
            f"Execution provider: {m.provider}; tile {tile} px, overlap {overlap} px, batch {m.run_batch}, "
            f"blending {opts.blending}{', TTA x8' if opts.tta else ''}; extent {out_grid.width} x "
            f"{out_grid.height} px."
        )
        cloud = open_cloud_policy(m.card, ins, sources, opts, stack, fb)
        reader = TileReader(ins, sources, m.card, ReadArea(ext, tile, geoms), cloud)
        used = {"tile_size_used": tile, "overlap_used": overlap, "batch_size_used": m.run_batch}
        prov = provenance.for_run("classify_pixels", opts, paths, m.path, m.card.architecture, used)
        tiles = TileGrid(out_grid.width, out_grid.height, tile, overlap)
        job = _Job(m, reader, tiles, out_grid, opts, outs, prov.tags(), warnings)
        return _run(job, fb)


@dataclass
class _Job:
    """One run's tile loop: the model, the reader, the tiling of the extent, where and how to write.

    Attributes:
        model: the probed model. reader: tiles in extent pixels. tiles: the tiling of the extent.
        grid: the extent's raster grid (the outputs' grid). options: the run's options.
        outputs: where to write. tags: provenance items written into every output.
        warnings: the run's warnings (returned in the result).
    """

    model: InferenceModel
    reader: TileReader
    tiles: TileGrid
    grid: RasterGrid
    options: ClassifyOptions
    outputs: OutputPaths
    tags: dict[str, str]
    warnings: list[str]


def _run(job: _Job, fb: Feedback) -> InferenceResult:
    """The streamed tile loop over the extent (see the module docstring); writes all outputs atomically."""
    m, grid, outputs = job.model, job.grid, job.outputs
    slots, spans = visiting_order(job.tiles)
    blender = TileBlender(len(m.classes), job.tiles, spans)
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        # rasterio passes GDAL_CACHEMAX to GDALSetCacheMax64: bytes, not MB (64 would be 64 bytes)
        cache_mb = _gdal_cache_mb(grid, job.tiles.tile_px, len(m.classes), outputs.probabilities)
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=cache_mb * 2**20))
        writer = ChunkWriter(*open_outputs(stack, grid, m.classes, outputs, job.tags, job.options.cog), m.classes)
        weights = blend_weights(job.tiles, job.options.blending)
        tiles_run = _stream_tiles(stack, job, (slots, weights), blender, writer, fb)
        if writer.counts.sum() == 0:
            raise EmptyAreaError(
                "Nothing to classify: every pixel of the area is nodata (or outside the mask). "
                "Check the raster's nodata value, the extent and the mask."
            )
    seconds = time.perf_counter() - t0
    qml = _side_outputs(job, writer.counts, fb)
    mps = grid.width * grid.height / max(seconds, 1e-9) / 1e6
    fb.info(
        f"Classified {grid.width * grid.height / 1e6:.2f} Mpx in {seconds:.1f} s: {mps:.2f} Mpx/s "
        f"({tiles_run}/{len(slots)} tiles run on {m.provider})."
    )
    return InferenceResult(
        output=outputs.classes,
        qml=qml,
        probabilities=outputs.probabilities,
        area_table=outputs.area_table,
        classes=m.classes,
        pixel_counts={c.value: int(n) for c, n in zip(m.classes, writer.counts)},
        nodata_pixels=writer.nodata,
        provider=m.provider,
        seconds=seconds,
        megapixels_per_s=mps,
        tiles=len(slots),
        tiles_run=tiles_run,
        tile_size=job.tiles.tile_px,
        overlap=job.tiles.overlap_px,
        batch_size=m.run_batch,
        buffer_bytes=blender.nbytes,
        warnings=job.warnings,
        polygons=outputs.polygons,
        provenance=job.tags,
    )


def _side_outputs(job: _Job, counts: np.ndarray, fb: Feedback) -> Path:
    """What follows the class raster: its QML style, the area table and the class polygons. Returns the QML."""
    outputs, classes = job.outputs, job.model.classes
    qml = styles.write_class_qml(outputs.classes.with_suffix(".qml"), classes, NODATA)
    if outputs.area_table is not None:
        write_area_table(outputs.area_table, classes, counts, pixel_area_m2(job.grid))
    if outputs.polygons is not None:
        res = polygonize_classes(outputs.classes, outputs.polygons, classes, job.options.polygons, job.tags, fb)
        fb.info(f"Class polygons: {res.features} written, {res.dropped} below the minimum mapping unit left out.")
    return qml


def _stream_tiles(
    stack: contextlib.ExitStack,
    job: _Job,
    order: tuple[list[TileSlot], BlendWeights],
    blender: TileBlender,
    writer: ChunkWriter,
    fb: Feedback,
) -> int:
    """Read, predict and blend the tiles in visiting order; hand finished chunks to a writer thread.

    Batches are read ahead in a reader thread; at most two chunks wait for the writer thread.

    Args:
        order: the tiles in :func:`core.inference.blending.visiting_order` and their blend weights.

    Returns:
        The number of tiles that went through the model (tiles without a valid pixel are skipped).
    """
    slots, weights = order
    reader, opts = job.reader, job.options
    batches = [slots[i : i + opts.batch_size] for i in range(0, len(slots), opts.batch_size)]
    rpool = stack.enter_context(_pool())
    wpool = stack.enter_context(_pool())
    pending: collections.deque[cf.Future] = collections.deque()

    def read_batch(b: list[TileSlot]) -> tuple[list[tuple[TileSlot, bool, np.ndarray]], np.ndarray | None]:
        """(slot, has input, valid mask) per tile, and the stacked inputs of the tiles to run."""
        tiles = [(s, *reader.read(Window(s.col, s.row, s.w, s.h))) for s in b]
        xs = [x for _, x, _ in tiles if x is not None]
        return [(s, x is not None, v) for s, x, v in tiles], (np.stack(xs) if xs else None)

    tiles_run = 0
    for bi, (batch, x_run) in enumerate(_prefetch(read_batch, batches, 2, rpool)):
        check_canceled(fb)
        probs = _predict(job.model, x_run, opts.tta) if x_run is not None else None
        j = 0
        for s, x, valid in batch:
            p = None
            if x:
                p, j = probs[j, :, : s.h, : s.w], j + 1
            for chunk in blender.add(s, p, weights.of(s), valid):
                while len(pending) >= 2:  # bound the queue: at most two chunks wait for the writer
                    pending.popleft().result()
                pending.append(wpool.submit(writer.write, chunk))
        tiles_run += 0 if x_run is None else len(x_run)
        fb.set_progress(100.0 * (bi + 1) / len(batches))
    while pending:
        pending.popleft().result()
    return tiles_run


def _gdal_cache_mb(grid: RasterGrid, tile: int, k: int, prob_path: Path | None) -> int:
    """GDAL block cache (MiB): the output blocks of about two tile rows, at least 64, at most 1024.

    GDAL's default (5 % of RAM) would otherwise fill up with blocks of a large raster and make the
    process's memory grow with the raster size. Output blocks of the rows being written must stay
    cached (else partly written blocks are flushed and compressed again); what is left holds input
    blocks. The caller converts to bytes: ``rasterio.Env`` hands ``GDAL_CACHEMAX`` to
    ``GDALSetCacheMax64``.
    """
    out_bytes = 1 + (4 * k if prob_path is not None else 0)
    rows = (tile + 512) * grid.width * 1.5 / 2**20
    return int(min(max(rows * out_bytes, 64), 1024))


@contextlib.contextmanager
def _pool() -> Iterator[cf.ThreadPoolExecutor]:
    pool = cf.ThreadPoolExecutor(max_workers=1)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _predict(m: InferenceModel, x: np.ndarray, tta: bool) -> np.ndarray:
    """Probabilities ``(N, K, t, t)`` for inputs ``(N, [T,] C, t, t)``; TTA averages 8 dihedral transforms."""
    if not tta:
        return m.run(x)
    acc = None
    for k in range(N_TRANSFORMS):
        p = dihedral(m.run(np.ascontiguousarray(dihedral(x, k))), k, inverse=True)
        acc = p.copy() if acc is None else acc + p
    return acc / np.float32(N_TRANSFORMS)
