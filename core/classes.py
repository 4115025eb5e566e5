"""The class table: class records, the default palette, CSV and QML readers, colour tables and QML styles.

One class is a :class:`ClassInfo` (integer value, display name, ``"#RRGGBB"`` colour). A class table is
a ``dict[int, ClassInfo]`` keyed by value and ordered by value; it comes from a CSV file
(:func:`read_class_table`), from a QGIS style beside a classified raster (:func:`read_qml_classes`,
:func:`class_table_for_raster`) or from a chip manifest / model card (their ``classes`` lists).
A class without a colour gets ``DEFAULT_PALETTE[i % 16]``, the same in chip labels, model outputs
and change rasters.

QGIS-free: the QML is written as XML text that QGIS 3.22+ loads as a *Paletted/Unique values*
renderer (``<rasterrenderer type="paletted">``). A ``<raster>.qml`` beside a raster is applied by
QGIS automatically when the raster is added to a project.
"""

from __future__ import annotations

import csv
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import rasterio

from .errors import InputError

#: Label value for "no label": excluded from losses and metrics (ArcGIS uses the same convention); the
#: nodata of label chips and of class rasters.
IGNORE_INDEX = 255

#: Default colours of classes without one: matplotlib's tab10 (green before orange), then the light
#: tab20 variants of its first six colours in the same order.
DEFAULT_PALETTE = (
    "#1f77b4",
    "#2ca02c",
    "#ff7f0e",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#98df8a",
    "#ffbb78",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
)

#: The colour of a class whose colour cannot be read.
FALLBACK_COLOR = (128, 128, 128)

#: Class-table names that mean "no label": their values are written as IGNORE_INDEX.
IGNORE_NAMES = frozenset({"unlabelled", "unlabeled", "no data", "nodata", "no_data", "ignore", "void"})

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


@dataclass
class ClassInfo:
    """One class of a class table.

    Attributes:
        value: the class value in the rasters (labels 0..254; 255 is IGNORE_INDEX).
        name: display name.
        color: ``"#RRGGBB"``.
        pixel_count: labelled pixels of this class over all chips of an export (overlaps counted each
            time); 0 outside a chip manifest.
        chip_count: chips that contain the class; 0 outside a chip manifest.
    """

    value: int
    name: str
    color: str = "#808080"
    pixel_count: int = 0
    chip_count: int = 0


# ------------------------------------------------------------------------------ colours
def hex_to_rgb(color: str, default: tuple[int, int, int] = FALLBACK_COLOR) -> tuple[int, int, int]:
    """``"#RRGGBB"`` (or ``"RRGGBB"``) to an ``(r, g, b)`` tuple of 0..255; ``default`` for anything else."""
    m = _HEX.match(str(color).strip())
    if not m:
        return default
    h = m.group(1)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def rgb_to_hex(rgb: Sequence[float]) -> str:
    """``(r, g, b[, a])`` with components 0..255 to ``"#rrggbb"`` (alpha ignored, fractions truncated).

    Raises:
        ValueError: fewer than three components, or one outside 0..255.
        TypeError: a component is not a number.
    """
    if len(rgb) < 3:
        raise ValueError(f"A colour needs red, green and blue components, got {rgb!r}.")
    r, g, b = (int(v) for v in rgb[:3])
    if not all(0 <= v <= 255 for v in (r, g, b)):
        raise ValueError(f"Colour components must be 0..255, got {rgb!r}.")
    return f"#{r:02x}{g:02x}{b:02x}"


def palette_color(index: int) -> str:
    """The default colour of the ``index``-th class without one (cycles through :data:`DEFAULT_PALETTE`)."""
    return DEFAULT_PALETTE[index % len(DEFAULT_PALETTE)]


def default_class(value: int, index: int = 0) -> ClassInfo:
    """A class with the name ``"class <value>"`` and the ``index``-th palette colour."""
    return ClassInfo(value=int(value), name=f"class {value}", color=palette_color(index))


def colormap(classes: Iterable[ClassInfo]) -> dict[int, tuple[int, int, int, int]]:
    """rasterio colour table ``{value: (r, g, b, 255)}`` for ``ds.write_colormap(1, ...)``."""
    return {int(c.value): (*hex_to_rgb(c.color), 255) for c in classes}


def raster_colors(path: str | os.PathLike) -> dict[int, str]:
    """The GDAL colour table of band 1 of a raster as ``{value: "#rrggbb"}``; {} when it has none."""
    try:
        with rasterio.open(path) as ds:
            return {int(k): rgb_to_hex(v) for k, v in ds.colormap(1).items()}
    except (ValueError, rasterio.errors.RasterioError):
        return {}


# ------------------------------------------------------------------------------ reading
def _col(header: list[str], *names: str) -> str | None:
    low = {h.strip().lower(): h for h in header}
    return next((low[n] for n in names if n in low), None)


def _csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a class-table CSV; a file without header row gets ``value,name[,color|r,g,b]``."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        raw = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if raw and re.fullmatch(r"\s*-?\d+\s*", raw[0][0]):  # no header row: value,name[,color|r,g,b]
        header = ["value", "name", "red", "green", "blue"] if len(raw[0]) >= 5 else ["value", "name", "color"]
    else:
        header, raw = (raw[0] if raw else []), raw[1:]
    return header, [dict(zip(header, (c.strip() for c in r))) for r in raw]


def _parse_color(row: dict, ccol: str | None, rgb: list[str | None]) -> str | None:
    if ccol and row.get(ccol):
        s = row[ccol].strip()
        if _HEX.match(s):
            return "#" + s.lstrip("#").lower()
    if all(rgb):
        try:
            return rgb_to_hex([float(row[c]) for c in rgb])
        except (TypeError, ValueError):
            return None
    return None


def _read_csv_classes(path: Path) -> list[ClassInfo]:
    if not path.is_file():
        raise InputError(f"Class table {path} does not exist; give a CSV with columns value,name,color.")
    header, rows = _csv_rows(path)
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
        color = _parse_color(row, ccol, rgb) or palette_color(i)
        classes.append(ClassInfo(value=value, name=name or f"class {value}", color=color))
    return classes


def read_class_table(source: str | os.PathLike | Iterable[ClassInfo]) -> dict[int, ClassInfo]:
    """Class table from a CSV file or from class records.

    The CSV needs a value column (``value``, ``class_id``, ``classvalue``, ``class_value``, ``id``
    or ``code``) and may have a name column (``name``, ``class_name``, ``classname``, ``label``) and
    a colour as ``color``/``colour`` (``#RRGGBB``) or as ``red``, ``green``, ``blue`` columns
    (0..255), as in the legends of the sample data (``value,name,red,green,blue``). The header row
    is optional. Classes without a (valid) colour get the palette colour of their row.

    Returns:
        ``{value: ClassInfo}`` ordered by value (copies without pixel/chip counts).

    Raises:
        InputError: the file is missing, has no value column, a value is not an integer 0..255, or
            a value is listed twice.
    """
    if isinstance(source, (str, os.PathLike)):
        classes = _read_csv_classes(Path(source))
    else:
        classes = [ClassInfo(int(c.value), c.name, c.color) for c in source]
    values = [c.value for c in classes]
    if len(set(values)) != len(values):
        raise InputError(f"The class table lists a value twice ({values}); give each class one value.")
    for c in classes:
        if not 0 <= c.value <= IGNORE_INDEX:
            raise InputError(f"Class value {c.value} ({c.name}) is outside 0..254; recode the classes to 0..254.")
    return {c.value: c for c in sorted(classes, key=lambda c: c.value)}


def read_qml_classes(path: str | os.PathLike) -> dict[int, ClassInfo]:
    """Classes of a QGIS paletted/unique-values raster style (``<paletteEntry value label color>``).

    Raises:
        xml.etree.ElementTree.ParseError: the file is not XML.
    """
    root = ET.parse(path).getroot()
    out = {}
    for e in root.iter("paletteEntry"):
        try:
            v = int(float(e.get("value", "")))
        except ValueError:
            continue
        out[v] = ClassInfo(v, e.get("label") or str(v), (e.get("color") or "#808080").lower()[:7])
    return out


def class_table_for_raster(path: str | os.PathLike, csv_path: str | os.PathLike | None = None) -> dict[int, ClassInfo]:
    """The class table of a classified raster: the CSV when given, else the sidecar ``.qml``, else {}.

    Colours of a GDAL colour table fill in classes named only by value when a QML is missing, but
    a colour table has 256 entries and no names, so it never defines which classes exist.
    """
    if csv_path:
        return read_class_table(csv_path)
    qml = Path(path).with_suffix(".qml")
    if qml.is_file():
        try:
            return read_qml_classes(qml)
        except ET.ParseError:
            return {}
    return {}


def split_ignored(table: Mapping[int, ClassInfo]) -> tuple[list[ClassInfo], set[int]]:
    """Separate "no label" entries (names in :data:`IGNORE_NAMES`, or value 255) from real classes.

    Returns:
        (real classes in table order, values to write as IGNORE_INDEX).
    """
    real, ignored = [], set()
    for c in table.values():
        if c.value == IGNORE_INDEX or c.name.strip().lower() in IGNORE_NAMES:
            ignored.add(c.value)
        else:
            real.append(c)
    return real, ignored


# ------------------------------------------------------------------------------ QGIS style
def write_class_qml(path: str | os.PathLike, classes: Iterable[ClassInfo], nodata: int | None = 255) -> Path:
    """Write a paletted (unique values) QML style for a single-band class raster.

    Args:
        path: the ``.qml`` file to write (use the raster path with suffix ``.qml`` so QGIS finds it).
        classes: one palette entry per class: value, colour (``#RRGGBB``) and label (name).
        nodata: the raster's nodata value; it is left out of the palette (drawn transparent).

    Returns:
        ``path`` as a :class:`Path`.
    """
    root = ET.Element("qgis", version="3.22.0", styleCategories="AllStyleCategories")
    pipe = ET.SubElement(root, "pipe")
    ren = ET.SubElement(pipe, "rasterrenderer", type="paletted", band="1", opacity="1", alphaBand="-1", nodataColor="")
    ET.SubElement(ren, "rasterTransparency")
    mmo = ET.SubElement(ren, "minMaxOrigin")
    for tag, text in (
        ("limits", "None"),
        ("extent", "WholeRaster"),
        ("statAccuracy", "Estimated"),
        ("cumulativeCutLower", "0.02"),
        ("cumulativeCutUpper", "0.98"),
        ("stdDevFactor", "2"),
    ):
        ET.SubElement(mmo, tag).text = text
    pal = ET.SubElement(ren, "colorPalette")
    for c in classes:
        if nodata is not None and int(c.value) == int(nodata):
            continue
        ET.SubElement(
            pal,
            "paletteEntry",
            value=str(int(c.value)),
            color=rgb_to_hex(hex_to_rgb(c.color)),
            alpha="255",
            label=str(c.name),
        )
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(
        pipe,
        "huesaturation",
        saturation="0",
        grayscaleMode="0",
        colorizeOn="0",
        colorizeRed="255",
        colorizeGreen="128",
        colorizeBlue="128",
        colorizeStrength="100",
        invertColors="0",
    )
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root) if hasattr(ET, "indent") else None
    path = Path(path)
    text = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode")
    path.write_text(text + "\n", encoding="utf-8")
    return path
