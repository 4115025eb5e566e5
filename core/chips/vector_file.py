"""Vector label files: reading, class values, burn order (:class:`core.chips.labels.VectorLabels` uses them).

The conventions (reprojection with ``to_crs``, largest polygons first, lines last) are described in
:mod:`core.chips.labels`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import IGNORE_INDEX, ClassInfo, default_class
from ..errors import InputError
from ..raster.grid import RasterGrid

_LINE_TYPES = ("LineString", "MultiLineString", "LinearRing")


def read_vector(path: Path, grid: RasterGrid, class_field: str | None, layer: str | None):
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


def in_burn_order(gdf):
    """Polygons largest first (later, smaller ones overwrite them), then lines in file order."""
    import shapely

    gdf["_is_line"] = gdf.geom_type.isin(_LINE_TYPES).to_numpy()
    gdf["_area"] = np.where(gdf["_is_line"], -1.0, shapely.area(gdf.geometry.values))  # order only: any CRS
    return gdf.sort_values(["_is_line", "_area"], ascending=[True, False], kind="stable")


def vector_classes(real: list[ClassInfo], values: np.ndarray) -> tuple[list[ClassInfo], list[int]]:
    """The table's classes plus default ones for values not in it (all values without a table), and those extras."""
    present = sorted(set(values.tolist()))
    if not real:
        return [default_class(v, i) for i, v in enumerate(present)], []
    classes = [ClassInfo(c.value, c.name, c.color) for c in real]
    extra = sorted(set(present) - {c.value for c in classes})
    classes += [default_class(v, len(classes) + i) for i, v in enumerate(extra)]
    return sorted(classes, key=lambda c: c.value), extra


def class_values(col, field_name: str, file_name: str, real: list[ClassInfo], ignored: set[int]) -> np.ndarray:
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
