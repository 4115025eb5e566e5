"""Class polygons of a class raster, built strip by strip with polygons merged across strip seams.

:func:`polygonize_classes` reads a single-band class raster in strips of ``block_rows`` full rows. In each
strip, the 4-connected regions of each class value are labelled (``scipy.ndimage.label``) and traced
into polygons (``rasterio.features.shapes``, GDAL's polygonizer) in *global pixel coordinates* (column,
row), where the edges of neighbouring strips coincide exactly. A region that touches the next strip is
kept open; the regions of the same value that face each other across a seam are joined (union-find on
the seam's two pixel rows) and their pieces merged with ``shapely.union_all`` once no piece touches the
current seam. Finished polygons are moved to the raster's CRS (its affine transform), filtered by the
minimum mapping unit, optionally simplified, and appended to the GeoPackage, so memory holds one strip
and the polygons that still touch the current seam, not the whole raster.

Attributes of each feature: ``value`` (class value), ``name``, ``pixels``, ``area_m2`` and ``area_ha``
(pixel count x pixel area, i.e. the raster's area of the region, also after simplification). The
output carries the run's provenance as GeoPackage layer metadata (:mod:`core.provenance`). QGIS-free.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from ..classes import ClassInfo
from ..errors import InputError
from ..feedback import Feedback, check_canceled, ensure_feedback
from .grid import RasterGrid, pixel_area_m2
from .io import atomic_output

#: Layer name inside the GeoPackage.
LAYER = "classes"
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)  # 4-connectivity, as rasterio's shapes


@dataclass(frozen=True)
class PolygonOptions:
    """How class polygons are made.

    Attributes:
        min_area_m2: minimum mapping unit, m²: polygons of a smaller raster area are left out (0 = keep all).
        simplify: Douglas-Peucker tolerance in CRS units (0 = none; ``shapely.simplify`` with
            ``preserve_topology``, per polygon, so neighbours may no longer share edges exactly).
        block_rows: rows per strip (memory: ``block_rows x width x 8`` bytes of labels).
    """

    min_area_m2: float = 0.0
    simplify: float = 0.0
    block_rows: int = 512


@dataclass
class PolygonResult:
    """What :func:`polygonize_classes` wrote.

    Attributes:
        path: the GeoPackage. features: polygons written. dropped: polygons below the minimum mapping unit.
        pixels: raster pixels per class value in the written polygons. area_m2: their area per class value.
    """

    path: Path
    features: int = 0
    dropped: int = 0
    pixels: dict[int, int] = field(default_factory=dict)
    area_m2: dict[int, float] = field(default_factory=dict)


@dataclass
class _Group:
    """Pieces (pixel-coordinate polygons) of one connected region, possibly spread over several strips."""

    value: int
    pieces: list
    pixels: int

    def merge(self, other: _Group) -> None:
        self.pieces.extend(other.pieces)
        self.pixels += other.pixels


def polygonize_classes(
    raster: str | os.PathLike,
    out_path: str | os.PathLike,
    classes: Iterable[ClassInfo],
    options: PolygonOptions | None = None,
    tags: dict[str, str] | None = None,
    feedback: Feedback | None = None,
) -> PolygonResult:
    """Polygons of the classes of a single-band class raster, written atomically to a GeoPackage.

    Args:
        raster: class raster (integer values; its nodata value, if any, is not polygonised).
        out_path: the ``.gpkg`` to write (layer :data:`LAYER`, MultiPolygon, the raster's CRS).
        classes: names of the class values (values without a name are called ``class <v>``).
        options: :class:`PolygonOptions` (None: defaults).
        tags: GeoPackage layer metadata (:meth:`core.provenance.Provenance.tags`).
        feedback: progress and cancel.

    Returns:
        :class:`PolygonResult`.

    Raises:
        InputError: the raster has several bands or non-integer values, or bad options.
        CanceledError: canceled; no file is left at ``out_path``.
    """
    o = options or PolygonOptions()
    if o.block_rows < 2 or o.min_area_m2 < 0 or o.simplify < 0:
        raise InputError("Polygon options: block_rows >= 2, minimum area >= 0 and simplification >= 0 needed.")
    fb = ensure_feedback(feedback)
    names = {int(c.value): c.name for c in classes}
    with rasterio.open(raster) as ds:
        if ds.count != 1 or np.dtype(ds.dtypes[0]).kind not in "iu":
            raise InputError(f"{Path(raster).name} is not a single-band integer class raster; cannot make polygons.")
        grid = RasterGrid.from_dataset(ds)
        px_area = pixel_area_m2(grid)
        if px_area is None and o.min_area_m2 > 0:
            fb.warning("The raster has no CRS: the minimum mapping unit (m²) cannot apply and is ignored.")
        result = PolygonResult(Path(out_path))
        writer = _GpkgWriter(grid, names, px_area, o, result, tags)
        with atomic_output(out_path) as tmp:
            writer.path = tmp
            for done, features in _strip_polygons(ds, o.block_rows, fb):
                writer.write(features)
                fb.set_progress(100.0 * done / grid.height)
            writer.close()
    return result


def _strip_polygons(ds, block_rows: int, fb: Feedback) -> Iterator[tuple[int, list[_Group]]]:
    """Yield ``(rows done, finished regions)`` after each strip of ``ds`` (see the module docstring)."""
    from rasterio.features import shapes
    from scipy.ndimage import label
    from shapely.geometry import shape

    nodata = ds.nodata
    groups: dict[int, _Group] = {}
    parent: dict[int, int] = {}
    prev_labels = prev_values = None
    next_id = 1
    for row0 in range(0, ds.height, block_rows):
        check_canceled(fb)
        n = min(block_rows, ds.height - row0)
        values = ds.read(1, window=Window(0, row0, ds.width, n))
        valid = values != nodata if nodata is not None else np.ones(values.shape, bool)
        labels = np.zeros(values.shape, np.int32)
        for v in np.unique(values[valid]):
            lab, count = label((values == v) & valid, structure=_CROSS)
            hit = lab > 0
            labels[hit] = lab[hit] + (next_id - 1)
            pixels = np.bincount(lab[hit], minlength=count + 1)
            for k in range(1, count + 1):
                parent[next_id + k - 1] = next_id + k - 1
                groups[next_id + k - 1] = _Group(int(v), [], int(pixels[k]))
            next_id += count
        for geom, lab_id in shapes(labels, mask=labels > 0, connectivity=4, transform=Affine.translation(0, row0)):
            groups[int(lab_id)].pieces.append(shape(geom))
        if prev_labels is not None:
            _join_seam(prev_labels, prev_values, labels[0], values[0], parent, groups)
        last = row0 + n >= ds.height
        open_roots = set() if last else {_find(parent, int(x)) for x in np.unique(labels[-1]) if x > 0}
        finished = [groups.pop(r) for r in list(groups) if r not in open_roots]
        # keep only what the next seam needs: the last row's labels, mapped to their roots
        prev_labels = np.array([_find(parent, int(x)) if x > 0 else 0 for x in labels[-1]], np.int32)
        prev_values = values[-1].copy()
        parent = {r: r for r in open_roots}
        yield row0 + n, finished


def _find(parent: dict[int, int], x: int) -> int:
    """Union-find root of ``x`` (with path halving)."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def _join_seam(
    above: np.ndarray,
    above_values: np.ndarray,
    below: np.ndarray,
    below_values: np.ndarray,
    parent: dict[int, int],
    groups: dict[int, _Group],
) -> None:
    """Join the regions of equal value that touch across a seam (``above``: last row of the previous strip)."""
    touch = (above > 0) & (below > 0) & (above_values == below_values)
    for a, b in set(zip(above[touch].tolist(), below[touch].tolist())):
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb:
            parent[rb] = ra
            groups[ra].merge(groups.pop(rb))


class _GpkgWriter:
    """Appends finished regions to the GeoPackage layer, as MultiPolygons in the raster's CRS."""

    def __init__(
        self, grid: RasterGrid, names: dict[int, str], px_area, o: PolygonOptions, result, tags: dict[str, str] | None
    ) -> None:
        t = grid.transform
        self.matrix = [t.a, t.b, t.d, t.e, t.c, t.f]
        self.grid, self.names, self.px_area, self.o, self.result = grid, names, px_area, o, result
        self.tags = dict(tags or {})
        self.path: Path | None = None
        self.started = False

    def write(self, groups: list[_Group]) -> None:
        """Merge, filter, move to the CRS, simplify and append ``groups`` (nothing written when empty)."""
        import shapely
        from shapely.affinity import affine_transform

        rows, geoms = [], []
        for g in groups:
            area = g.pixels * self.px_area if self.px_area is not None else None
            if area is not None and area < self.o.min_area_m2:
                self.result.dropped += 1
                continue
            geom = affine_transform(shapely.union_all(g.pieces), self.matrix)
            if self.o.simplify > 0:
                geom = shapely.simplify(geom, self.o.simplify, preserve_topology=True)
            geoms.append(geom)
            rows.append((g.value, self.names.get(g.value, f"class {g.value}"), g.pixels, area))
            self.result.pixels[g.value] = self.result.pixels.get(g.value, 0) + g.pixels
            self.result.area_m2[g.value] = self.result.area_m2.get(g.value, 0.0) + (area or 0.0)
        if geoms:
            self._append(rows, geoms)

    def _append(self, rows: list[tuple], geoms: list) -> None:
        """Write ``rows`` (value, name, pixels, area) with ``geoms``; the first call creates the layer and its metadata."""
        import geopandas as gpd
        import pyogrio

        area = [r[3] for r in rows]
        frame = gpd.GeoDataFrame(
            {
                "value": np.array([r[0] for r in rows], np.int32),
                "name": [r[1] for r in rows],
                "pixels": np.array([r[2] for r in rows], np.int64),
                "area_m2": np.array([np.nan if a is None else a for a in area], np.float64),
                "area_ha": np.array([np.nan if a is None else a / 1e4 for a in area], np.float64),
            },
            geometry=gpd.GeoSeries(geoms),
            crs=self.grid.crs,
        )
        pyogrio.write_dataframe(
            frame,
            self.path,
            layer=LAYER,
            driver="GPKG",
            append=self.started,
            promote_to_multi=True,
            geometry_type="MultiPolygon",
            layer_metadata=(self.tags or None) if not self.started else None,
        )
        self.started = True
        self.result.features += len(geoms)

    def close(self) -> None:
        """Create the (empty) layer when no polygon was written."""
        if not self.started:
            self._append([], [])
