"""Label rasters on an image grid: vector polygons/lines or a classified raster -> uint8 class chips.

Labels are produced one window at a time (:meth:`LabelSource.read`) so an export never holds a
whole label raster. Every pixel without a label gets :data:`~core.raster.IGNORE_INDEX` (255), which
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

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from ..classes import DEFAULT_PALETTE, ClassInfo, default_class, rgb_to_hex, split_ignored
from ..errors import InputError, NoOverlapError
from ..raster.grid import IGNORE_INDEX, RasterGrid, aligned
from ..raster.tiling import expand_window
from .morphology import dilate_lines, erode_edges

_LINE_TYPES = ("LineString", "MultiLineString", "LinearRing")


# ------------------------------------------------------------------------------ label sources
def is_raster(path: str | os.PathLike) -> bool:
    """True when GDAL opens ``path`` as a raster (a classified raster label)."""
    try:
        with rasterio.open(path):
            return True
    except rasterio.errors.RasterioIOError:
        return False


@dataclass
class LabelSource:
    """Labels prepared for one image grid; read windows with :meth:`read`.

    Build it with :func:`open_labels`. Attributes hold the reprojected vectors (``geoms`` in burn
    order: polygons largest first, then lines; their uint8 ``values``; ``is_line``; an STRtree) or
    the path of a classified raster, its value lookup table (raw value -> uint8 label), its colour
    table and, when it has no nodata and lies on another grid, its footprint (pixels outside it
    become IGNORE_INDEX).
    """

    grid: RasterGrid
    kind: str
    path: Path
    classes: list[ClassInfo]
    line_buffer_px: int = 0
    edge_erosion_px: int = 0
    geoms: np.ndarray | None = None
    values: np.ndarray | None = None
    is_line: np.ndarray | None = None
    tree: object = None
    lut: np.ndarray | None = None
    footprint: object = None
    has_lines: bool = False
    colormap: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def halo(self) -> int:
        """Extra pixels read around a window so dilation/erosion match a whole-raster result."""
        return (self.line_buffer_px if self.has_lines else 0) + self.edge_erosion_px

    def read(self, window: Window, raster: object = None) -> np.ndarray:
        """Label chip of ``window`` (pixels of the image grid).

        Args:
            window: integer window inside the grid.
            raster: for raster labels, the open dataset from :func:`core.raster.aligned` (the
                caller keeps it open across windows); ignored for vectors.

        Returns:
            ``(height, width)`` uint8, IGNORE_INDEX where unlabelled.
        """
        big = expand_window(window, self.halo, self.grid.width, self.grid.height)
        if self.kind == "vector":
            lab = self._rasterize(big)
        else:
            lab = self._read_raster(big, raster)
        lab = erode_edges(lab, self.edge_erosion_px)
        dr, dc = int(window.row_off) - int(big.row_off), int(window.col_off) - int(big.col_off)
        return np.ascontiguousarray(lab[dr : dr + int(window.height), dc : dc + int(window.width)])

    def _rasterize(self, win: Window) -> np.ndarray:
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
            lab = dilate_lines(lab, self.line_buffer_px)
            out = np.where(lab != IGNORE_INDEX, lab, out).astype(np.uint8)
        return out

    def _read_raster(self, win: Window, ds) -> np.ndarray:
        if ds is None:
            with aligned(self.path, self.grid, Resampling.nearest) as d:
                return self._read_raster(win, d)
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


def open_labels(
    path: str | os.PathLike,
    grid: RasterGrid,
    *,
    class_field: str | None = None,
    layer: str | None = None,
    class_table: Mapping[int, ClassInfo] | None = None,
    line_buffer_px: int = 0,
    edge_erosion_px: int = 0,
) -> LabelSource:
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
        line_buffer_px: dilation radius (pixels) of line labels.
        edge_erosion_px: erosion radius (pixels) of class edges.

    Returns:
        A :class:`LabelSource` whose ``classes`` is the table's real classes, or (no table) the
        distinct values of the class field with default names; empty for a raster without table
        (the caller collects values while exporting).

    Raises:
        InputError: missing/empty file, class field missing or unusable, values outside 0..254,
            negative buffer/erosion, non-integer raster.
        NoOverlapError: no label lies on the raster.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"Label file {path} does not exist.")
    if line_buffer_px < 0 or edge_erosion_px < 0:
        raise InputError("LINE_BUFFER_PX and EDGE_EROSION_PX are pixel counts and must be >= 0.")
    real, ignored = split_ignored(class_table or {})
    if is_raster(path):
        return _open_raster_labels(path, grid, real, ignored, line_buffer_px, edge_erosion_px)
    return _open_vector_labels(path, grid, class_field, layer, real, ignored, line_buffer_px, edge_erosion_px)


def _open_raster_labels(
    path: Path, grid: RasterGrid, real: list[ClassInfo], ignored: set[int], line_buffer_px: int, edge_erosion_px: int
) -> LabelSource:
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
    src = LabelSource(
        grid=grid,
        kind="raster",
        path=path,
        classes=real,
        line_buffer_px=line_buffer_px,
        edge_erosion_px=edge_erosion_px,
        lut=lut,
        footprint=footprint,
        colormap=colormap,
    )
    if line_buffer_px:
        src.notes.append("LINE_BUFFER_PX applies to line vectors only; ignored for a classified raster.")
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


def _read_vector(path: Path, grid: RasterGrid, class_field: str | None, layer: str | None):
    """The features of a vector label file in the grid CRS, with the class field checked (a GeoDataFrame)."""
    import geopandas as gpd

    try:
        gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except Exception as e:  # pyogrio raises its own DataSourceError/DataLayerError
        raise InputError(f"Cannot read labels {path.name} as a raster or vector file ({e}).") from e
    fields = ", ".join(c for c in gdf.columns if c != gdf.geometry.name)
    if class_field is None:
        raise InputError(f"Vector labels {path.name} need a class field (CLASS_FIELD); fields: {fields}.")
    if class_field not in gdf.columns:
        raise InputError(f"Class field {class_field!r} is not in {path.name}; choose one of {fields}.")
    if gdf.crs is None:
        raise InputError(f"Vector labels {path.name} have no CRS; assign one (Vector > Assign Projection).")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if grid.crs is not None and gdf.crs != grid.crs:
        gdf = gdf.to_crs(grid.crs)
    return gdf


def _in_burn_order(gdf):
    """Polygons largest first (later, smaller ones overwrite them), then lines in file order."""
    import shapely

    gdf["_is_line"] = gdf.geom_type.isin(_LINE_TYPES).to_numpy()
    gdf["_area"] = np.where(gdf["_is_line"], -1.0, shapely.area(gdf.geometry.values))  # order only: any CRS
    return gdf.sort_values(["_is_line", "_area"], ascending=[True, False], kind="stable")


def _vector_classes(real: list[ClassInfo], values: np.ndarray) -> tuple[list[ClassInfo], list[int]]:
    """The table's classes plus default ones for values not in it (all values without a table), and those extras."""
    present = sorted(set(values.tolist()))
    if not real:
        return [default_class(v, i) for i, v in enumerate(present)], []
    classes = [ClassInfo(c.value, c.name, c.color) for c in real]
    extra = sorted(set(present) - {c.value for c in classes})
    classes += [default_class(v, len(classes) + i) for i, v in enumerate(extra)]
    return sorted(classes, key=lambda c: c.value), extra


def _open_vector_labels(
    path: Path,
    grid: RasterGrid,
    class_field: str | None,
    layer: str | None,
    real: list[ClassInfo],
    ignored: set[int],
    line_buffer_px: int,
    edge_erosion_px: int,
) -> LabelSource:
    """Vector labels reprojected onto ``grid``, in burn order, with an STRtree (see :func:`open_labels`)."""
    import shapely
    from shapely.geometry import box

    gdf = _read_vector(path, grid, class_field, layer)
    values = _class_values(gdf[class_field], class_field, path.name, real, ignored)
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
    gdf = _in_burn_order(gdf)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    values = gdf["_value"].to_numpy().astype(np.uint8)
    is_line = gdf["_is_line"].to_numpy(dtype=bool)
    shapely.prepare(geoms)
    classes, extra = _vector_classes(real, values)
    src = LabelSource(
        grid=grid,
        kind="vector",
        path=path,
        classes=classes,
        line_buffer_px=line_buffer_px,
        edge_erosion_px=edge_erosion_px,
        geoms=geoms,
        values=values,
        is_line=is_line,
        tree=shapely.STRtree(geoms),
        has_lines=bool(is_line.any()),
    )
    if extra:
        src.notes.append(f"Class values {extra} are not in the class table; they get default names.")
    if line_buffer_px and not src.has_lines:
        src.notes.append("LINE_BUFFER_PX is set but the labels have no lines; it has no effect.")
    return src


def _class_values(col, field_name: str, file_name: str, real: list[ClassInfo], ignored: set[int]) -> np.ndarray:
    """Map a class column to int values (-1 = no class) using the table for text values."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(col) or not (
        pd.api.types.is_numeric_dtype(col) or pd.api.types.is_string_dtype(col) or col.dtype == object
    ):
        raise InputError(f"Class field {field_name!r} of {file_name} is {col.dtype}; use an integer or text field.")
    if pd.api.types.is_numeric_dtype(col):
        num = pd.to_numeric(col, errors="coerce")
    else:
        text = col.astype("string").str.strip()
        by_name = {c.name.strip().lower(): c.value for c in real}
        by_name.update({n: v for n, v in ((str(v), v) for v in ignored)})
        mapped = text.str.lower().map(by_name)
        num = pd.to_numeric(text, errors="coerce").where(mapped.isna(), mapped)
        unknown = sorted(set(text[num.isna() & text.notna()].tolist()))
        if unknown:
            if not real:
                raise InputError(
                    f"Class field {field_name!r} of {file_name} holds text ({', '.join(map(str, unknown[:5]))}...) "
                    "and no class table was given: choose an integer field, or give a class table (CSV value,name) "
                    "whose names match these texts."
                )
            raise InputError(
                f"Class field {field_name!r} of {file_name} has values not named in the class table: "
                f"{', '.join(map(str, unknown[:10]))}. Add them to the table (value,name) or fix the field."
            )
    arr = num.to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(arr)
    if ok.any():
        bad = arr[ok][(arr[ok] != np.round(arr[ok])) | (arr[ok] < 0) | (arr[ok] > IGNORE_INDEX)]
        if bad.size:
            raise InputError(
                f"Class field {field_name!r} of {file_name} has values outside the integers 0..254 "
                f"(e.g. {bad[0]:g}); recode the classes to 0..254 (255 is the 'no label' value)."
            )
    out = np.where(ok, arr, -1).astype(np.int64)
    for v in ignored:
        out[out == v] = IGNORE_INDEX
    return out
