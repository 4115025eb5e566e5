"""Label rasters on an image grid: vector polygons/lines or a classified raster -> uint8 class chips.

Labels are produced one window at a time (:meth:`LabelSource.read`: :class:`RasterLabels` or
:class:`VectorLabels`, made by :func:`open_labels`) so an export never holds a whole label raster. Every pixel without a label gets :data:`~core.raster.IGNORE_INDEX` (255), which
losses and metrics skip.

Conventions (and where they come from):

* Vectors are reprojected onto the raster CRS with geopandas (``to_crs``), never re-tagged.
* Polygons are burned largest first, so smaller polygons lying inside larger ones win (a pond inside
  a wetland); a pixel is burned when its centre is inside (rasterio default). This is how the
  reference ``osm_landuse_rasterized_10m.tif`` of the eo-box sample data was made
  (https://github.com/benmack/eo-box).
* Lines (roads) are burned after polygons and dilated by ``line_buffer_px`` pixels; class edges are
  eroded by ``edge_erosion_px`` pixels (:mod:`core.chips.morphology`, which cites the methods).
* Windows are processed with a halo of ``line_buffer_px + edge_erosion_px`` pixels (clipped to the
  raster, :func:`core.raster.tiling.expand_window`), so chip labels equal a whole-raster
  rasterisation cropped to the chip.

Class tables (CSV reading, "no label" entries, default colours) live in :mod:`core.classes`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from ..classes import DEFAULT_PALETTE, IGNORE_INDEX, ClassInfo, rgb_to_hex, split_ignored
from ..errors import InputError, NoOverlapError
from ..raster.grid import RasterGrid, aligned
from ..raster.tiling import expand_window
from .morphology import dilate_lines, erode_edges
from .vector_file import class_values, in_burn_order, read_vector, vector_classes


# ------------------------------------------------------------------------------ label sources
def is_raster(path: str | os.PathLike) -> bool:
    """True when GDAL opens ``path`` as a raster (a classified raster label)."""
    try:
        with rasterio.open(path):
            return True
    except rasterio.errors.RasterioIOError:
        return False


@dataclass(frozen=True)
class LabelShaping:
    """How label shapes are grown or shrunk, in pixels of the image grid (:mod:`core.chips.morphology`).

    Attributes:
        line_buffer_px: dilation radius of line labels (vectors; ignored for a raster, with a note).
        edge_erosion_px: erosion radius of class edges.
    """

    line_buffer_px: int = 0
    edge_erosion_px: int = 0


@dataclass
class LabelSource:
    """Labels prepared for one image grid: :meth:`read` gives the uint8 label chip of a window.

    The base of :class:`RasterLabels` and :class:`VectorLabels` (made by :func:`open_labels`). A source is
    also a context manager: inside ``with source:`` a raster source keeps its dataset open across windows.

    Attributes:
        grid: the image grid chips are cut from. path: the label file.
        classes: the real classes (see :func:`open_labels`).
        shaping: line dilation and edge erosion.
        colormap: the label file's own colours ``{value: "#RRGGBB"}`` (a raster's colour table).
        notes: warnings for the user (parameters without effect, values missing from the class table).
    """

    grid: RasterGrid
    path: Path
    classes: list[ClassInfo]
    shaping: LabelShaping = field(default_factory=LabelShaping)
    colormap: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    #: ``"raster"`` or ``"vector"`` (the manifest's ``label_kind``)
    kind = ""

    @property
    def halo(self) -> int:
        """Extra pixels read around a window so dilation/erosion match a whole-raster result."""
        return self.shaping.edge_erosion_px

    def read(self, window: Window) -> np.ndarray:
        """Label chip of ``window`` (an integer window inside the grid, image pixels).

        Returns:
            ``(height, width)`` uint8, IGNORE_INDEX where unlabelled.
        """
        big = expand_window(window, self.halo, self.grid.width, self.grid.height)
        lab = erode_edges(self._labels(big), self.shaping.edge_erosion_px)
        dr, dc = int(window.row_off) - int(big.row_off), int(window.col_off) - int(big.col_off)
        return np.ascontiguousarray(lab[dr : dr + int(window.height), dc : dc + int(window.width)])

    def _labels(self, win: Window) -> np.ndarray:
        """``(h, w)`` uint8 labels of ``win`` before edge erosion."""
        raise NotImplementedError

    def __enter__(self) -> LabelSource:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@dataclass
class RasterLabels(LabelSource):
    """A classified raster, read through :func:`core.raster.grid.aligned` (nearest) on the image grid.

    Attributes:
        lut: ``(65536,)`` uint8 raw value -> label (IGNORE_INDEX for "no label" values).
        footprint: the raster's outline in the grid CRS when it has no nodata and lies on another grid
            (pixels outside it become IGNORE_INDEX); else None.
    """

    lut: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    footprint: Any = None
    _ds: Any = field(default=None, repr=False)
    _stack: contextlib.ExitStack | None = field(default=None, repr=False)

    kind = "raster"

    def __enter__(self) -> RasterLabels:
        self._stack = contextlib.ExitStack()
        self._ds = self._stack.enter_context(aligned(self.path, self.grid, Resampling.nearest))
        return self

    def __exit__(self, *exc: object) -> None:
        stack, self._stack, self._ds = self._stack, None, None
        if stack is not None:
            stack.close()

    def _labels(self, win: Window) -> np.ndarray:
        if self._ds is None:  # outside ``with``: open the raster for this window only
            with self:
                return self._labels(win)
        ds = self._ds
        data = ds.read(1, window=win)
        if data.dtype in (np.uint8, np.uint16):
            lab = self.lut[data]
        else:
            lab = self.lut[np.clip(data.astype(np.int64), 0, len(self.lut) - 1)]
            lab[(data < 0) | (data >= len(self.lut))] = IGNORE_INDEX
        if ds.nodata is not None:
            lab[data == ds.nodata] = IGNORE_INDEX
        if self.footprint is not None:
            from rasterio.features import geometry_mask

            outside = geometry_mask([self.footprint], out_shape=lab.shape, transform=self.grid.window_transform(win))
            lab[outside] = IGNORE_INDEX
        return lab


@dataclass
class VectorLabels(LabelSource):
    """Vector features reprojected onto the image grid, burned per window (see the module docstring).

    Attributes:
        geoms: ``(N,)`` shapely geometries in burn order (polygons largest first, then lines), prepared.
        values: ``(N,)`` uint8 class values. is_line: ``(N,)`` bool.
        tree: an STRtree of ``geoms``.
    """

    geoms: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    is_line: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    tree: Any = None

    kind = "vector"

    @property
    def has_lines(self) -> bool:
        """Whether any feature is a line."""
        return bool(self.is_line.any())

    @property
    def halo(self) -> int:
        return (self.shaping.line_buffer_px if self.has_lines else 0) + self.shaping.edge_erosion_px

    def _labels(self, win: Window) -> np.ndarray:
        from rasterio.features import rasterize
        from shapely.geometry import box

        transform = self.grid.window_transform(win)
        shape = (int(win.height), int(win.width))
        idx = np.sort(self.tree.query(box(*rasterio.windows.bounds(win, self.grid.transform)), predicate="intersects"))
        out = np.full(shape, IGNORE_INDEX, dtype=np.uint8)
        if idx.size == 0:
            return out
        lines = self.is_line[idx]
        poly = idx[~lines]
        if poly.size:
            rasterize(
                zip(self.geoms[poly], self.values[poly].tolist()),
                out_shape=shape,
                transform=transform,
                out=out,
                dtype="uint8",
            )
        if lines.any():
            ln = idx[lines]
            lab = rasterize(
                zip(self.geoms[ln], self.values[ln].tolist()),
                out_shape=shape,
                transform=transform,
                fill=IGNORE_INDEX,
                dtype="uint8",
            )
            lab = dilate_lines(lab, self.shaping.line_buffer_px)
            out = np.where(lab != IGNORE_INDEX, lab, out).astype(np.uint8)
        return out


def open_labels(
    path: str | os.PathLike,
    grid: RasterGrid,
    *,
    class_field: str | None = None,
    layer: str | None = None,
    class_table: Mapping[int, ClassInfo] | None = None,
    shaping: LabelShaping | None = None,
) -> RasterLabels | VectorLabels:
    """Prepare vector or classified-raster labels for windows of ``grid``.

    Args:
        path: vector file (GeoPackage, Shapefile, GeoJSON...) or classified raster.
        grid: the image grid chips are cut from.
        class_field: attribute holding the class (vectors). Integer values are used as they are;
            text values are looked up by name in ``class_table`` (case-insensitive), or parsed when
            they are integers written as text.
        layer: layer name of a multi-layer vector file.
        class_table: ``{value: ClassInfo}`` (see :func:`core.classes.read_class_table`); entries named
            like "unlabelled" or "no data" become IGNORE_INDEX.
        shaping: line dilation and edge erosion radii (pixels); default none.

    Returns:
        A :class:`RasterLabels` or :class:`VectorLabels` whose ``classes`` is the table's real classes, or
        (no table) the distinct values of the class field with default names; empty for a raster without
        table (the caller collects values while exporting).

    Raises:
        InputError: missing/empty file, class field missing or unusable, values outside 0..254,
            negative buffer/erosion, non-integer raster.
        NoOverlapError: no label lies on the raster.
    """
    path, shaping = Path(path), shaping or LabelShaping()
    if not path.exists():
        raise InputError(f"Label file {path} does not exist.")
    if shaping.line_buffer_px < 0 or shaping.edge_erosion_px < 0:
        raise InputError("LINE_BUFFER_PX and EDGE_EROSION_PX are pixel counts and must be >= 0.")
    if is_raster(path):
        return _open_raster_labels(path, grid, class_table or {}, shaping)
    return _open_vector_labels(path, grid, class_field, layer, class_table or {}, shaping)


def _open_raster_labels(
    path: Path, grid: RasterGrid, class_table: Mapping[int, ClassInfo], shaping: LabelShaping
) -> RasterLabels:
    """A classified raster checked against ``grid`` (integers, overlap), with its value lookup table."""
    real, ignored = split_ignored(class_table)
    with rasterio.open(path) as ds:
        if not np.issubdtype(np.dtype(ds.dtypes[0]), np.integer):
            raise InputError(
                f"Classified raster {path.name} has {ds.dtypes[0]} values; class labels must be integers "
                "(convert it with Raster > Conversion > Translate, type Byte)."
            )
        src_grid = RasterGrid.from_dataset(ds)
        footprint = None
        if not src_grid.same_as(grid) and ds.nodata is None and ds.crs is not None:
            footprint = _footprint(ds, grid)
        try:
            cmap = ds.colormap(1)
        except ValueError:
            cmap = {}
    # aligned() raises NoOverlapError/CRSMismatchError early, before any chip is written.
    with aligned(path, grid, Resampling.nearest):
        pass
    lut = np.full(65536, IGNORE_INDEX, dtype=np.uint8)
    lut[:IGNORE_INDEX] = np.arange(IGNORE_INDEX, dtype=np.uint8)
    for v in ignored:
        lut[v] = IGNORE_INDEX
    colormap = {int(k): rgb_to_hex(v) for k, v in cmap.items()}
    for c in real:  # the raster's own colour table fills colours the class table left at default
        if c.value in colormap and c.color in DEFAULT_PALETTE:
            c.color = colormap[c.value]
    src = RasterLabels(grid, path, real, shaping, colormap, lut=lut, footprint=footprint)
    if shaping.line_buffer_px:
        src.notes.append("LINE_BUFFER_PX applies to line vectors only; ignored for a classified raster.")
    return src


def _open_vector_labels(
    path: Path,
    grid: RasterGrid,
    class_field: str | None,
    layer: str | None,
    class_table: Mapping[int, ClassInfo],
    shaping: LabelShaping,
) -> VectorLabels:
    """Vector labels reprojected onto ``grid``, in burn order, with an STRtree (see :func:`open_labels`)."""
    import shapely
    from shapely.geometry import box

    real, ignored = split_ignored(class_table)
    gdf = read_vector(path, grid, class_field, layer)
    values = class_values(gdf[class_field], class_field, path.name, real, ignored)
    gdf = gdf.assign(_value=values).loc[lambda d: d["_value"] >= 0]
    gdf = gdf[gdf["_value"] != IGNORE_INDEX]
    if gdf.empty:
        raise InputError(f"{path.name} has no feature with a class value in field {class_field!r}.")
    if not gdf.intersects(box(*grid.bounds)).any():
        b = tuple(round(x, 3) for x in gdf.total_bounds)
        raise NoOverlapError(
            f"No label feature of {path.name} (bounds {b} in {grid.crs}) overlaps the raster (bounds "
            f"{tuple(round(x, 3) for x in grid.bounds)}). Check that labels and imagery cover the same area."
        )
    gdf = in_burn_order(gdf)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    values = gdf["_value"].to_numpy().astype(np.uint8)
    is_line = gdf["_is_line"].to_numpy(dtype=bool)
    shapely.prepare(geoms)
    classes, extra = vector_classes(real, values)
    tree = shapely.STRtree(geoms)
    src = VectorLabels(grid, path, classes, shaping, geoms=geoms, values=values, is_line=is_line, tree=tree)
    if extra:
        src.notes.append(f"Class values {extra} are not in the class table; they get default names.")
    if shaping.line_buffer_px and not src.has_lines:
        src.notes.append("LINE_BUFFER_PX is set but the labels have no lines; it has no effect.")
    return src


def _footprint(ds, grid: RasterGrid):
    """Outline of a raster without nodata, in the grid CRS (densified), to mask the warp fill."""
    from pyproj import Transformer
    from shapely.geometry import box
    from shapely.ops import transform as shp_transform

    poly = box(*ds.bounds).segmentize(max(ds.bounds[2] - ds.bounds[0], ds.bounds[3] - ds.bounds[1]) / 64)
    if ds.crs == grid.crs:
        return poly
    tr = Transformer.from_crs(ds.crs, grid.crs, always_xy=True)
    return shp_transform(tr.transform, poly)
