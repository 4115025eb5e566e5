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
2. Tiles come from :func:`core.raster.tiling.tile_offsets` (``cover_edges=True``, the grid of
   :func:`core.raster.tiling.tile_windows`) over the extent window, ``stride = tile_size - overlap``
   (pixels). A reader thread (:class:`core.inference.reader.TileReader`) reads, masks and normalises
   the next batches while ``session.run`` computes.
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
from pathlib import Path

import numpy as np
import rasterio
import rasterio.transform
from rasterio.windows import Window

from .. import classes as styles
from .. import provenance
from ..errors import EmptyAreaError
from ..feedback import Feedback, check_canceled, ensure_feedback
from ..modelcard import card_from_session
from ..preprocessing.dihedral import N_TRANSFORMS, dihedral
from ..raster.grid import (
    RasterGrid,
    pixel_area_m2,
    window_from_bounds_clipped,
)
from ..raster.polygons import polygonize_classes
from ..raster.tiling import tile_offsets
from ..stac import is_item, model_from_item
from .bands import plan_sources
from .blending import TileBlender, TileSlot, axis_weights, visiting_order
from .catalog import resolve_model
from .options import ClassifyOptions, InferenceResult
from .pixel_size import check_pixel_size
from .reader import TileReader, check_mask_overlap, load_mask, open_cloud_policy
from .session import PreparedModel, open_session, prepare_model
from .setup import input_paths, input_shape, open_inputs, tile_params, with_overrides
from .writer import NODATA, ChunkWriter, OutputPaths, open_outputs, write_area_table


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


def classify_raster(
    inputs: Sequence[str | os.PathLike],
    model: str | os.PathLike,
    out_path: str | os.PathLike,
    options: ClassifyOptions | None = None,
    *,
    prob_path: str | os.PathLike | None = None,
    area_table_path: str | os.PathLike | None = None,
    polygons_path: str | os.PathLike | None = None,
    feedback: Feedback | None = None,
) -> InferenceResult:
    """Classify a raster (or series, or pair) with an ONNX model, tile by tile, streamed.

    Every raster and vector output carries the run's provenance (:mod:`core.provenance`: plugin version,
    model file name and SHA-256, architecture, options, tile size and overlap used, date) as GeoTIFF tags
    or GeoPackage layer metadata. ``options.cog`` writes the rasters as Cloud-Optimised GeoTIFFs.

    Args:
        inputs: one raster (BCHW model), T rasters on one grid (BTCHW model, T = ``card.time_steps``),
            or two rasters (task ``"change"``: dates stacked as 2C channels).
        model: ``.onnx`` file with our model card or Deepness metadata (or without metadata), a STAC
            Item with the MLM extension whose ``mlm:model`` asset is one (:func:`core.stac.model_from_item`),
            or a catalogue name (``"dynamicworld"``, :mod:`core.inference.catalog`; made on first use).
        out_path: class raster (GeoTIFF, uint8 class values, nodata 255, colour table; QML beside it).
        options: how to classify (:class:`ClassifyOptions`; None: its defaults).
        prob_path: optional float32 probability raster, one band per class (nodata NaN).
        area_table_path: optional CSV of per-class pixels, m2, ha and percent.
        polygons_path: optional GeoPackage of class polygons (value, name, pixels, m², ha), made from the
            class raster strip by strip (:func:`core.raster.polygons.polygonize_classes`, ``options.polygons``).
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
    model = resolve_model(model, fb)
    model = model_from_item(model) if is_item(model) else model
    sess, warn = open_session(model, opts.device, opts.threads)
    warnings = [warn] if warn else []
    card = with_overrides(card_from_session(sess), opts, warnings)
    if len(sess.get_outputs()) > 1:
        warnings.append(
            f"The model has {len(sess.get_outputs())} outputs; only the first ({sess.get_outputs()[0].name}) is used."
        )
    with contextlib.ExitStack() as stack:
        datasets, names, grid = open_inputs(stack, paths, card, opts.resample, fb, warnings)
        sources = plan_sources(card, paths, names, opts.band_map)
        tile, overlap = tile_params(sess, card, opts.tile_size, opts.overlap, warnings)
        ext = window_from_bounds_clipped(grid, opts.extent) if opts.extent else Window(0, 0, grid.width, grid.height)
        out_grid = RasterGrid(grid.crs, grid.window_transform(ext), int(ext.width), int(ext.height))
        geoms = load_mask(opts.mask, grid.crs) if opts.mask is not None else None
        if geoms is not None:
            check_mask_overlap(geoms, out_grid)
        check_pixel_size(card, grid, warnings)
        for w in warnings:
            fb.warning(w)
        m = prepare_model(sess, card, tile, opts.batch_size, input_shape(card, sources, tile))
        provider = sess.get_providers()[0]
        fb.info(
            f"Execution provider: {provider}; tile {tile} px, overlap {overlap} px, batch {m.run_batch}, "
            f"blending {opts.blending}{', TTA x8' if opts.tta else ''}; extent {out_grid.width} x "
            f"{out_grid.height} px."
        )
        reader = TileReader(
            datasets,
            sources,
            card.layout,
            card.input_scale,
            tile,
            (int(ext.col_off), int(ext.row_off)),
            geoms,
            grid.transform,
            card.indices,
            card.normalization,
        )
        reader.cloud = open_cloud_policy(
            card, paths, sources, grid, opts.valid_masks, opts.mask_kind, opts.cloud_threshold, stack, fb
        )
        outputs = OutputPaths(*(Path(p) if p else None for p in (out_path, prob_path, area_table_path, polygons_path)))
        prov = provenance.for_run("classify_raster", opts, paths, model, card.architecture, _used(tile, overlap, m))
        return _run(m, reader, out_grid, tile, overlap, opts, outputs, provider, warnings, fb, prov.tags())


def _used(tile: int, overlap: int, m: PreparedModel) -> dict[str, int]:
    """The tiling actually used, for the provenance record."""
    return {"tile_size_used": tile, "overlap_used": overlap, "batch_size_used": m.run_batch}


def _run(
    m: PreparedModel,
    reader: TileReader,
    grid: RasterGrid,
    tile: int,
    overlap: int,
    opts: ClassifyOptions,
    outputs: OutputPaths,
    provider: str,
    warnings: list[str],
    fb: Feedback,
    tags: dict[str, str],
) -> InferenceResult:
    """The streamed tile loop over ``grid`` (the extent; see the module docstring); writes all outputs atomically."""
    stride = tile - overlap
    slots, spans = visiting_order(grid.width, grid.height, tile, stride)
    blender = TileBlender(len(m.classes), grid.width, grid.height, tile, stride, spans)
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        # rasterio passes GDAL_CACHEMAX to GDALSetCacheMax64: bytes, not MB (64 would be 64 bytes)
        cache_mb = _gdal_cache_mb(grid, tile, len(m.classes), outputs.probabilities)
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=cache_mb * 2**20))
        writer = ChunkWriter(*open_outputs(stack, grid, m.classes, outputs, tags, opts.cog), m.classes)
        tiles_run = _stream_tiles(stack, m, reader, grid, slots, blender, writer, tile, stride, opts, fb)
        if writer.counts.sum() == 0:
            raise EmptyAreaError(
                "Nothing to classify: every pixel of the area is nodata (or outside the mask). "
                "Check the raster's nodata value, the extent and the mask."
            )
    seconds = time.perf_counter() - t0
    qml = _side_outputs(outputs, m, writer.counts, grid, opts, tags, fb)
    mps = grid.width * grid.height / max(seconds, 1e-9) / 1e6
    fb.info(
        f"Classified {grid.width * grid.height / 1e6:.2f} Mpx in {seconds:.1f} s: {mps:.2f} Mpx/s "
        f"({tiles_run}/{len(slots)} tiles run on {provider})."
    )
    return InferenceResult(
        output=outputs.classes,
        qml=qml,
        probabilities=outputs.probabilities,
        area_table=outputs.area_table,
        classes=m.classes,
        pixel_counts={c.value: int(n) for c, n in zip(m.classes, writer.counts)},
        nodata_pixels=writer.nodata,
        provider=provider,
        seconds=seconds,
        megapixels_per_s=mps,
        tiles=len(slots),
        tiles_run=tiles_run,
        tile_size=tile,
        overlap=overlap,
        batch_size=m.run_batch,
        buffer_bytes=blender.nbytes,
        warnings=warnings,
        polygons=outputs.polygons,
        provenance=tags,
    )


def _side_outputs(
    outputs: OutputPaths,
    m: PreparedModel,
    counts: np.ndarray,
    grid: RasterGrid,
    opts: ClassifyOptions,
    tags: dict[str, str],
    fb: Feedback,
) -> Path:
    """What follows the class raster: its QML style, the area table and the class polygons. Returns the QML."""
    qml = styles.write_class_qml(outputs.classes.with_suffix(".qml"), m.classes, NODATA)
    if outputs.area_table is not None:
        write_area_table(outputs.area_table, m.classes, counts, pixel_area_m2(grid))
    if outputs.polygons is not None:
        res = polygonize_classes(outputs.classes, outputs.polygons, m.classes, opts.polygons, tags, fb)
        fb.info(f"Class polygons: {res.features} written, {res.dropped} below the minimum mapping unit left out.")
    return qml


def _stream_tiles(
    stack: contextlib.ExitStack,
    m: PreparedModel,
    reader: TileReader,
    grid: RasterGrid,
    slots: list[TileSlot],
    blender: TileBlender,
    writer: ChunkWriter,
    tile: int,
    stride: int,
    opts: ClassifyOptions,
    fb: Feedback,
) -> int:
    """Read, predict and blend the tiles in visiting order; hand finished chunks to a writer thread.

    Batches are read ahead in a reader thread; at most two chunks wait for the writer thread.

    Returns:
        The number of tiles that went through the model (tiles without a valid pixel are skipped).
    """
    wy, wx = (
        dict(zip(tile_offsets(n, tile, stride), axis_weights(n, tile, stride, opts.blending)))
        for n in (grid.height, grid.width)
    )
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
        probs = _predict(m, x_run, opts.tta) if x_run is not None else None
        j = 0
        for s, x, valid in batch:
            p = None
            if x:
                p, j = probs[j, :, : s.h, : s.w], j + 1
            for chunk in blender.add(s, p, wy[s.row][: s.h, None] * wx[s.col][None, : s.w], valid):
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


def _predict(m: PreparedModel, x: np.ndarray, tta: bool) -> np.ndarray:
    """Probabilities ``(N, K, t, t)`` for inputs ``(N, [T,] C, t, t)``; TTA averages 8 dihedral transforms."""
    if not tta:
        return m.run(x)
    acc = None
    for k in range(N_TRANSFORMS):
        p = dihedral(m.run(np.ascontiguousarray(dihedral(x, k))), k, inverse=True)
        acc = p.copy() if acc is None else acc + p
    return acc / np.float32(N_TRANSFORMS)
