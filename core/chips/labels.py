"""Label rasters on an image grid: vector polygons/lines or a classified raster -> uint8 class chips.

Labels are produced one window at a time (:meth:`LabelSource.read`) so an export never holds a
whole label raster. Every pixel without a label gets :data:`~core.raster.IGNORE_INDEX` (255), which
losses and metrics skip.

Conventions (and where they come from):

* Vectors are reprojected onto the raster CRS with geopandas (``to_crs``), never re-tagged.
* Polygons are burned largest first, so smaller polygons lying inside larger ones win (a pond inside
  a wetland); a pixel is burned when its centre is inside (rasterio default). This is how the
  reference ``osm_landuse_rasterized_10m.tif`` of the eo-box sample data was made (its SOURCE.md).
* Lines (roads) are burned after polygons and dilated by ``line_buffer_px`` pixels with a disk
  structuring element (seed 002: "we used morphological dilation to increase the width of the road
  after rasterization").
* Edge erosion (seed 003, eo-learn ``ErosionTask``): a pixel keeps its class only when every pixel
  within ``edge_erosion_px`` (disk) has the same class; class edges and 1-px artefacts become 255.
  The raster border is not an edge (values are extended outwards).
* Windows are processed with a halo of ``line_buffer_px + edge_erosion_px`` pixels (clipped to the
  raster), so chip labels equal a whole-raster rasterisation cropped to the chip.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from ..errors import InputError, NoOverlapError
from ..raster.grid import IGNORE_INDEX, RasterGrid, aligned
from .manifest import ClassInfo

#: Class-table names that mean "no label": their values are written as IGNORE_INDEX.
IGNORE_NAMES = frozenset({"unlabelled", "unlabeled", "no data", "nodata", "no_data", "ignore", "void"})

#: Default colours (tab10 + extras) for classes without one.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
)

_LINE_TYPES = ("LineString", "MultiLineString", "LinearRing")


# ------------------------------------------------------------------------------ class tables
def default_class(value: int, index: int = 0) -> ClassInfo:
    """A class with the name ``"class <value>"`` and a palette colour."""
    return ClassInfo(value=int(value), name=f"class {value}", color=PALETTE[index % len(PALETTE)])


def _col(header: list[str], *names: str) -> str | None:
    low = {h.strip().lower(): h for h in header}
    return next((low[n] for n in names if n in low), None)


def read_class_table(source: str | os.PathLike | Sequence[ClassInfo]) -> list[ClassInfo]:
    """Class table from a CSV file or a list of :class:`ClassInfo`.

    The CSV needs a value column (``value``, ``class_id``, ``classvalue``, ``class_value``, ``id``
    or ``code``) and may have a name column (``name``, ``class_name``, ``classname``, ``label``) and
    a colour as ``color``/``colour`` (``#RRGGBB``) or as ``red``, ``green``, ``blue`` columns
    (0..255), as in the legends of the sample data (``value,name,red,green,blue``).

    Returns:
        Classes sorted by value (duplicates rejected).

    Raises:
        InputError: the file is missing, has no value column, or a value is not an integer 0..255.
    """
    if not isinstance(source, (str, os.PathLike)):
        classes = [ClassInfo(int(c.value), c.name, c.color) for c in source]
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"Class table {path} does not exist; give a CSV with columns value,name,color.")
        with open(path, newline="", encoding="utf-8-sig") as f:
            raw = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
        if raw and re.fullmatch(r"\s*-?\d+\s*", raw[0][0]):  # no header row: value,name[,color|r,g,b]
            header = ["value", "name", "red", "green", "blue"] if len(raw[0]) >= 5 else ["value", "name", "color"]
        else:
            header, raw = (raw[0] if raw else []), raw[1:]
        rows = [dict(zip(header, (c.strip() for c in r))) for r in raw]
        vcol = _col(header, "value", "class_id", "classvalue", "class_value", "id", "code")
        if vcol is None:
            raise InputError(
                f"Class table {path.name} has no value column (columns: {', '.join(header) or 'none'}); "
                "name one of them 'value' (also accepted: class_id, ClassValue, id, code)."
            )
        ncol = _col(header, "name", "class_name", "classname", "label", "class")
        ccol = _col(header, "color", "colour", "hex")
        rgb = [_col(header, c) for c in ("red", "green", "blue")]
        classes = []
        for i, row in enumerate(rows):
            try:
                value = int(float(row[vcol]))
            except (TypeError, ValueError):
                raise InputError(
                    f"Class table {path.name}, data row {i + 1}: value {row[vcol]!r} is not an integer; "
                    "expected rows of value,name[,color]."
                ) from None
            name = (row.get(ncol) or "").strip() if ncol else ""
            color = _parse_color(row, ccol, rgb) or PALETTE[i % len(PALETTE)]
            classes.append(ClassInfo(value=value, name=name or f"class {value}", color=color))
    values = [c.value for c in classes]
    if len(set(values)) != len(values):
        raise InputError(f"The class table lists a value twice ({values}); give each class one value.")
    for c in classes:
        if not 0 <= c.value <= IGNORE_INDEX:
            raise InputError(f"Class value {c.value} ({c.name}) is outside 0..254; recode the classes to 0..254.")
    return sorted(classes, key=lambda c: c.value)


def _parse_color(row: dict, ccol: str | None, rgb: list[str | None]) -> str | None:
    if ccol and row.get(ccol):
        s = row[ccol].strip()
        if re.fullmatch(r"#?[0-9a-fA-F]{6}", s):
            return "#" + s.lstrip("#").lower()
    if all(rgb):
        try:
            r, g, b = (int(float(row[c])) for c in rgb)
            return f"#{r:02x}{g:02x}{b:02x}"
        except (TypeError, ValueError):
            return None
    return None


def split_ignored(classes: list[ClassInfo]) -> tuple[list[ClassInfo], set[int]]:
    """Separate "no label" entries (names in :data:`IGNORE_NAMES`, or value 255) from real classes.

    Returns:
        (real classes, values to write as IGNORE_INDEX).
    """
    real, ignored = [], set()
    for c in classes:
        if c.value == IGNORE_INDEX or c.name.strip().lower() in IGNORE_NAMES:
            ignored.add(c.value)
        else:
            real.append(c)
    return real, ignored


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """``"#RRGGBB"`` -> (r, g, b); grey for anything unparsable."""
    s = color.lstrip("#")
    try:
        return int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16)
    except (ValueError, IndexError):
        return 128, 128, 128


# ------------------------------------------------------------------------------ morphology
def disk(radius: int) -> np.ndarray:
    """``(2r+1, 2r+1)`` bool disk structuring element (pixels with distance <= r)."""
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return (x * x + y * y) <= radius * radius


def dilate_lines(lines: np.ndarray, radius: int) -> np.ndarray:
    """Dilate every class of a line-label array by a disk of ``radius`` pixels (seed 002).

    Args:
        lines: ``(H, W)`` uint8, IGNORE_INDEX where no line.
        radius: dilation radius in pixels (0 returns the input).

    Returns:
        ``(H, W)`` uint8; where dilated classes meet, the higher class value wins.
    """
    if radius <= 0:
        return lines
    from scipy import ndimage

    out = np.full_like(lines, IGNORE_INDEX)
    for v in np.unique(lines):
        if v == IGNORE_INDEX:
            continue
        out[ndimage.binary_dilation(lines == v, structure=disk(radius))] = v
    return out


def erode_edges(labels: np.ndarray, radius: int) -> np.ndarray:
    """Set pixels within ``radius`` px of a class edge to IGNORE_INDEX (seed 003, eo-learn ErosionTask).

    A pixel keeps its value when the minimum and maximum over its disk neighbourhood both equal it;
    the neighbourhood is extended past the array border by edge replication (``mode="nearest"``).

    Args:
        labels: ``(H, W)`` uint8 with IGNORE_INDEX for no label (unlabelled areas also erode classes).
        radius: erosion radius in pixels (0 returns the input).

    Returns:
        ``(H, W)`` uint8.
    """
    if radius <= 0:
        return labels
    from scipy import ndimage

    fp = disk(radius)
    lo = ndimage.minimum_filter(labels, footprint=fp, mode="nearest")
    hi = ndimage.maximum_filter(labels, footprint=fp, mode="nearest")
    return np.where((lo == labels) & (hi == labels), labels, np.uint8(IGNORE_INDEX)).astype(np.uint8)


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
    order: polygons largest first, then lines; their uint8 ``values``; ``is_line``; an STRtree) or the path of a classified raster, its value
    lookup table (raw value -> uint8 label), its colour table and, when it has no nodata and lies
    on another grid, its footprint (pixels outside it become IGNORE_INDEX).
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
        h = self.halo
        c0, r0 = max(0, int(window.col_off) - h), max(0, int(window.row_off) - h)
        c1 = min(self.grid.width, int(window.col_off + window.width) + h)
        r1 = min(self.grid.height, int(window.row_off + window.height) + h)
        big = Window(c0, r0, c1 - c0, r1 - r0)
        if self.kind == "vector":
            lab = self._rasterize(big)
        else:
            lab = self._read_raster(big, raster)
        lab = erode_edges(lab, self.edge_erosion_px)
        dr, dc = int(window.row_off) - r0, int(window.col_off) - c0
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
            rasterize(zip(self.geoms[poly], self.values[poly].tolist()), out_shape=shape, transform=transform,
                      out=out, dtype="uint8")
        if lines.any():
            ln = idx[lines]
            lab = rasterize(zip(self.geoms[ln], self.values[ln].tolist()), out_shape=shape, transform=transform,
                            fill=IGNORE_INDEX, dtype="uint8")
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

            outside = geometry_mask([self.footprint], out_shape=lab.shape,
                                    transform=self.grid.window_transform(win))
            lab[outside] = IGNORE_INDEX
        return lab


def open_labels(path: str | os.PathLike, grid: RasterGrid, *, class_field: str | None = None,
                layer: str | None = None, class_table: list[ClassInfo] | None = None,
                line_buffer_px: int = 0, edge_erosion_px: int = 0) -> LabelSource:
    """Prepare vector or classified-raster labels for windows of ``grid``.

    Args:
        path: vector file (GeoPackage, Shapefile, GeoJSON...) or classified raster.
        grid: the image grid chips are cut from.
        class_field: attribute holding the class (vectors). Integer values are used as they are;
            text values are looked up by name in ``class_table`` (case-insensitive), or parsed when
            they are integers written as text.
        layer: layer name of a multi-layer vector file.
        class_table: classes (see :func:`read_class_table`); entries named like "unlabelled" or
            "no data" become IGNORE_INDEX.
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
    table = list(class_table) if class_table else []
    real, ignored = split_ignored(table)
    if is_raster(path):
        return _open_raster_labels(path, grid, real, ignored, line_buffer_px, edge_erosion_px)
    return _open_vector_labels(path, grid, class_field, layer, real, ignored, line_buffer_px, edge_erosion_px)


def _open_raster_labels(path: Path, grid: RasterGrid, real: list[ClassInfo], ignored: set[int],
                        line_buffer_px: int, edge_erosion_px: int) -> LabelSource:
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
    colormap = {int(k): "#{:02x}{:02x}{:02x}".format(*v[:3]) for k, v in cmap.items()}
    for c in real:  # the raster's own colour table fills colours the class table left at default
        if c.value in colormap and c.color in PALETTE:
            c.color = colormap[c.value]
    src = LabelSource(grid=grid, kind="raster", path=path, classes=real, line_buffer_px=line_buffer_px,
                      edge_erosion_px=edge_erosion_px, lut=lut, footprint=footprint, colormap=colormap)
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


def _open_vector_labels(path: Path, grid: RasterGrid, class_field: str | None, layer: str | None,
                        real: list[ClassInfo], ignored: set[int], line_buffer_px: int,
                        edge_erosion_px: int) -> LabelSource:
    import geopandas as gpd
    import shapely
    from shapely.geometry import box

    try:
        gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except Exception as e:  # pyogrio raises its own DataSourceError/DataLayerError
        raise InputError(f"Cannot read labels {path.name} as a raster or vector file ({e}).") from e
    if class_field is None:
        raise InputError(f"Vector labels {path.name} need a class field (CLASS_FIELD); fields: "
                         f"{', '.join(c for c in gdf.columns if c != gdf.geometry.name)}.")
    if class_field not in gdf.columns:
        raise InputError(
            f"Class field {class_field!r} is not in {path.name}; choose one of "
            f"{', '.join(c for c in gdf.columns if c != gdf.geometry.name)}."
        )
    if gdf.crs is None:
        raise InputError(f"Vector labels {path.name} have no CRS; assign one (Vector > Assign Projection).")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if grid.crs is not None and gdf.crs != grid.crs:
        gdf = gdf.to_crs(grid.crs)
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
    gdf["_is_line"] = gdf.geom_type.isin(_LINE_TYPES).to_numpy()
    # largest polygons first: later (smaller) ones overwrite them; lines keep file order, after polygons
    gdf["_area"] = np.where(gdf["_is_line"], -1.0, shapely.area(gdf.geometry.values))  # order only: any CRS
    gdf = gdf.sort_values(["_is_line", "_area"], ascending=[True, False], kind="stable")
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    values = gdf["_value"].to_numpy().astype(np.uint8)
    is_line = gdf["_is_line"].to_numpy(dtype=bool)
    shapely.prepare(geoms)
    if real:
        classes = [ClassInfo(c.value, c.name, c.color) for c in real]
        known = {c.value for c in classes}
        extra = sorted(set(values.tolist()) - known)
        classes += [default_class(v, len(classes) + i) for i, v in enumerate(extra)]
        classes.sort(key=lambda c: c.value)
    else:
        classes = [default_class(v, i) for i, v in enumerate(sorted(set(values.tolist())))]
    src = LabelSource(grid=grid, kind="vector", path=path, classes=classes, line_buffer_px=line_buffer_px,
                      edge_erosion_px=edge_erosion_px, geoms=geoms, values=values, is_line=is_line,
                      tree=shapely.STRtree(geoms), has_lines=bool(is_line.any()))
    if real and extra:
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


def rasterize_full(source: LabelSource, window: Window | None = None) -> np.ndarray:
    """Labels of the whole grid (or a window) in one call; for tests and small rasters only.

    Returns:
        ``(H, W)`` uint8.
    """
    window = window or Window(0, 0, source.grid.width, source.grid.height)
    if source.kind == "raster":
        with aligned(source.path, source.grid, Resampling.nearest) as ds:
            return source.read(window, ds)
    return source.read(window)



def mask_inconsistent_water(labels: np.ndarray, ndwi: np.ndarray, valid: np.ndarray, water_value: int,
                            threshold: float = 0.0, margin: float = 0.2) -> tuple[np.ndarray, int, int]:
    """Set labels whose water state the imagery contradicts to IGNORE_INDEX (seed 000_92b8837726c3be0f.txt).

    Seed 000 masks "inconsistent water shorelines" with the NDWI (McFeeters, green/NIR): a shoreline
    moves between acquisitions, so its labels are unreliable. Two rules, on labelled pixels only:

    * contradiction: labelled ``water_value`` but mean NDWI over the valid dates ``< threshold``, or
      labelled another class but mean NDWI ``> threshold + margin``;
    * flip (T >= 2): the pixel's water state (NDWI > ``threshold``) differs between its valid dates.

    Args:
        labels: ``(H, W)`` uint8 label chip (IGNORE_INDEX = unlabelled).
        ndwi: ``(T, H, W)`` float32 NDWI of each date (T = 1 for a single image).
        valid: ``(T, H, W)`` bool, observations to use (nodata/cloud excluded).
        water_value: the class value of water.
        threshold: NDWI above which a pixel is water (McFeeters: 0).
        margin: how far above ``threshold`` the NDWI of a non-water label must be to count as a
            contradiction (dark wet soil and shadows have slightly positive NDWI).

    Returns:
        ``(labels, contradicted, flipped)``: the masked copy (uint8) and the pixels masked by each
        rule (a pixel masked by both counts as contradicted).
    """
    lab = labels.copy()
    labelled = lab != IGNORE_INDEX
    n_obs = valid.sum(axis=0)
    seen = labelled & (n_obs > 0)
    mean = np.where(valid, ndwi, 0).sum(axis=0) / np.maximum(n_obs, 1)
    water = lab == water_value
    contra = seen & ((water & (mean < threshold)) | (~water & (mean > threshold + margin)))
    is_w = (ndwi > threshold) & valid
    not_w = (ndwi <= threshold) & valid
    flip = seen & is_w.any(axis=0) & not_w.any(axis=0) & ~contra
    lab[contra | flip] = IGNORE_INDEX
    return lab, int(contra.sum()), int(flip.sum())
