"""Raster output: the GeoTIFF profile every raster output uses, atomic writes of any file, VRT mosaics.

:func:`atomic_output` writes a file under a temporary name beside its final path and renames it when
complete, so a cancelled or failed run never leaves a file that looks finished. It serves every output of
the plugin (rasters, CSV/JSON tables, manifests, checkpoints, reports, VRTs), not only rasters.

rasterio (and :mod:`.grid`, which needs it) is imported inside the functions that use it: modules that
only need :func:`atomic_output` (the weights catalogue, which Train Model's dialog imports) load on a
QGIS without rasterio, so every algorithm is listed there and a missing package is reported when one runs.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from .grid import RasterGrid

#: Serialises GDAL calls of threads that read and write rasters at the same time (the inference engine's
#: reader and writer threads). GDAL's block cache is global: a thread that needs room evicts (and so
#: writes) dirty blocks of *any* dataset, and GDAL datasets must not be used by two threads at once.
#: Without this lock a reader thread could flush an output's dirty block while a writer thread was writing
#: into it, and a finished chunk was occasionally lost (left nodata): 3 of 60 runs of a 256² raster when the
#: cache was already full. Only I/O is serialised; computing still overlaps with it.
GDAL_IO_LOCK = threading.RLock()


def geotiff_profile(grid: RasterGrid, count: int, dtype: str, nodata: float | None = None, tile: int = 256) -> dict:
    """rasterio profile of a tiled, DEFLATE-compressed GeoTIFF on ``grid``.

    Tiles are only requested when the raster is at least one tile big (GDAL needs 16-multiple
    block sizes); BIGTIFF is used when needed.
    """
    prof = {
        "driver": "GTiff",
        "crs": grid.crs,
        "transform": grid.transform,
        "width": grid.width,
        "height": grid.height,
        "count": count,
        "dtype": dtype,
        "nodata": nodata,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    if grid.width >= tile and grid.height >= tile:
        prof.update(tiled=True, blockxsize=tile, blockysize=tile)
    if np.dtype(dtype).kind in "iu":
        prof["predictor"] = 2
    return prof


#: GDAL sidecars of a raster, renamed or deleted with it.
_SIDECARS = (".aux.xml", ".ovr", ".msk")


@contextlib.contextmanager
def atomic_output(final_path: str | os.PathLike) -> Iterator[Path]:
    """Write a file of any type under a temporary name beside ``final_path``; rename it into place on success.

    Use it for every output written in one go: rasters (``rasterio.open(tmp, "w")``), text and JSON
    (``tmp.write_text``, ``open(tmp, "w")``), checkpoints (``torch.save(state, tmp)``), reports, VRTs. The
    body must create the file at the yielded path; the rename is atomic on one file system, so readers see
    either the old file or the complete new one. A file that grows while the run goes on (a log appended
    line by line) is not an atomic output: write it directly.

    On any exception (cancel included) the temporary file is deleted and ``final_path`` is left untouched.
    Raster sidecars that GDAL writes beside the temporary file (``.aux.xml``, ``.ovr``, ``.msk``) are
    renamed with it, or deleted with it; other file types have none.

    Yields:
        The temporary path to write to (same folder and suffix as ``final_path``; the folder is created).
    """
    final = Path(final_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.tmp-{uuid.uuid4().hex[:8]}{final.suffix}")
    try:
        yield tmp
        os.replace(tmp, final)
        for side in _SIDECARS:
            if Path(str(tmp) + side).exists():
                os.replace(str(tmp) + side, str(final) + side)
    finally:
        for p in [tmp, *(Path(str(tmp) + s) for s in _SIDECARS)]:
            if p.exists():
                p.unlink()


@contextlib.contextmanager
def atomic_raster(final_path: str | os.PathLike, cog: bool = False) -> Iterator[Path]:
    """:func:`atomic_output` for a GeoTIFF that can be written as a Cloud-Optimised GeoTIFF.

    Without ``cog`` this is :func:`atomic_output`. With ``cog`` the body writes an ordinary GeoTIFF at
    the yielded path (and must close it before the block ends); it is then copied with GDAL's COG driver
    (DEFLATE, 512-pixel tiles, overviews, metadata tags and colour table kept) to the temporary name of
    ``final_path``, which is renamed into place, and the intermediate file is deleted. Nothing is left at
    ``final_path`` when anything fails.

    Raises:
        InputError: this GDAL has no COG driver (GDAL < 3.1).
    """
    if not cog:
        with atomic_output(final_path) as tmp:
            yield tmp
        return
    import rasterio
    from rasterio.shutil import copy as gdal_copy

    if not _has_cog_driver():
        raise InputError("This GDAL has no COG driver (GDAL 3.1 or newer needed); write a plain GeoTIFF instead.")
    with atomic_output(final_path) as tmp:
        work = tmp.with_name(f"{tmp.stem}.work{tmp.suffix}")
        try:
            yield work
            with rasterio.open(work) as src:  # class values: nearest overviews; probabilities: average
                resampling = "AVERAGE" if src.dtypes[0] in ("float32", "float64") else "NEAREST"
            gdal_copy(
                work,
                tmp,
                driver="COG",
                COMPRESS="DEFLATE",
                BLOCKSIZE=512,
                OVERVIEWS="AUTO",
                RESAMPLING=resampling,
                BIGTIFF="IF_SAFER",
            )
        finally:
            for q in [work, *(Path(str(work) + s) for s in _SIDECARS)]:
                if q.exists():
                    q.unlink()


def _has_cog_driver() -> bool:
    import rasterio

    with rasterio.Env() as env:
        return "COG" in env.drivers()


def build_vrt(paths: Sequence[Path], vrt_path: Path, bounds: tuple[float, float, float, float] | None = None) -> Path:
    """A VRT mosaic of single-band class GeoTIFFs of one CRS, written atomically (relative source paths).

    Uses GDAL ``BuildVRT`` (``osgeo``), else :func:`write_vrt` (same CRS and pixel size needed).

    Args:
        paths: the GeoTIFFs.
        vrt_path: the VRT to write.
        bounds: ``(left, bottom, right, top)`` of the mosaic in CRS units (default: union of ``paths``),
            so that empty or failed tasks at the edge leave nodata instead of shrinking the mosaic.
    """
    try:
        from osgeo import gdal
    except ImportError:
        return write_vrt(paths, vrt_path, bounds)
    with atomic_output(vrt_path) as tmp, _gdal_exceptions(gdal):
        try:
            ds = gdal.BuildVRT(str(tmp), [str(p) for p in paths], outputBounds=bounds)
        except RuntimeError as e:
            raise InputError(f"GDAL could not build a VRT of {len(paths)} outputs: {e}") from e
        if ds is None:
            raise InputError(f"GDAL could not build a VRT of {len(paths)} outputs: {gdal.GetLastErrorMsg()}")
        ds = None  # noqa: F841 - closing the dataset writes the file
    return vrt_path


@contextlib.contextmanager
def _gdal_exceptions(gdal) -> Iterator[None]:
    """GDAL Python exceptions on for the calls inside, the caller's setting restored after.

    The setting is process-wide and QGIS or another plugin may rely on theirs, so it is never left changed.
    GDAL >= 3.7 has ``gdal.ExceptionMgr`` for this; older bindings get the same by hand.
    """
    if hasattr(gdal, "ExceptionMgr"):
        with gdal.ExceptionMgr(useExceptions=True):
            yield
        return
    was = gdal.GetUseExceptions()
    gdal.UseExceptions()
    try:
        yield
    finally:
        if not was:
            gdal.DontUseExceptions()


def write_vrt(paths: Sequence[Path], vrt_path: Path, bounds: tuple[float, float, float, float] | None = None) -> Path:
    """Plain VRT XML mosaic of same-CRS, same-pixel-size single-band uint8 rasters (no GDAL bindings needed).

    Raises:
        InputError: the rasters differ in CRS or pixel size.
    """
    from xml.sax.saxutils import escape

    import rasterio

    from .grid import RasterGrid

    grids, cmap, nodata = [], None, None
    for p in paths:
        with rasterio.open(p) as ds:
            grids.append(RasterGrid.from_dataset(ds))
            if cmap is None:
                cmap, nodata = ds.colormap(1), ds.nodata
    g0 = grids[0]
    if any(g.crs != g0.crs or not np.allclose(g.pixel_size, g0.pixel_size) for g in grids):
        raise InputError("The outputs differ in CRS or pixel size; a VRT needs one grid. Open them separately.")
    px, py = g0.pixel_size
    left, bottom, right, top = bounds or (
        min(g.bounds[0] for g in grids),
        min(g.bounds[1] for g in grids),
        max(g.bounds[2] for g in grids),
        max(g.bounds[3] for g in grids),
    )
    w, h = round((right - left) / px), round((top - bottom) / py)
    entries = "".join(f'<Entry c1="{c[0]}" c2="{c[1]}" c3="{c[2]}" c4="{c[3]}"/>' for _, c in sorted(cmap.items()))
    sources = []
    for p, g in zip(paths, grids):
        rel = os.path.relpath(p, vrt_path.parent)
        xo, yo = round((g.bounds[0] - left) / px), round((top - g.bounds[3]) / py)
        sources.append(
            f'<SimpleSource><SourceFilename relativeToVRT="1">{escape(rel)}</SourceFilename><SourceBand>1</SourceBand>'
            f'<SrcRect xOff="0" yOff="0" xSize="{g.width}" ySize="{g.height}"/>'
            f'<DstRect xOff="{xo}" yOff="{yo}" xSize="{g.width}" ySize="{g.height}"/></SimpleSource>'
        )
    nd = f"<NoDataValue>{nodata:g}</NoDataValue>" if nodata is not None else ""
    xml = (
        f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><SRS>{escape(g0.crs.to_wkt()) if g0.crs else ""}</SRS>'
        f"<GeoTransform>{left!r}, {px!r}, 0.0, {top!r}, 0.0, {-py!r}</GeoTransform>"
        f'<VRTRasterBand dataType="Byte" band="1">{nd}<ColorInterp>Palette</ColorInterp>'
        f"<ColorTable>{entries}</ColorTable>{''.join(sources)}</VRTRasterBand></VRTDataset>\n"
    )
    with atomic_output(vrt_path) as tmp:
        tmp.write_text(xml, encoding="utf-8")
    return vrt_path
