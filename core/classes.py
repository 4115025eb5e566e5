"""Colour tables and QGIS styles for class rasters (Classify Pixels, Detect Change).

QGIS-free: the QML is written as XML text that QGIS 3.22+ loads as a *Paletted/Unique values*
renderer (``<rasterrenderer type="paletted">``). A ``<raster>.qml`` beside a raster is applied by
QGIS automatically when the raster is added to a project.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from .chips.manifest import ClassInfo

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
FALLBACK_COLOR = (128, 128, 128)


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """``"#RRGGBB"`` (or ``"RRGGBB"``) to an RGB tuple; anything else gives grey."""
    m = _HEX.match(str(color).strip())
    if not m:
        return FALLBACK_COLOR
    h = m.group(1)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def colormap(classes: Sequence[ClassInfo]) -> dict[int, tuple[int, int, int, int]]:
    """rasterio colour table ``{value: (r, g, b, 255)}`` for ``ds.write_colormap(1, ...)``."""
    return {int(c.value): (*hex_to_rgb(c.color), 255) for c in classes}


def write_class_qml(path: str | os.PathLike, classes: Sequence[ClassInfo], nodata: int | None = 255) -> Path:
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
    ren = ET.SubElement(pipe, "rasterrenderer", type="paletted", band="1", opacity="1", alphaBand="-1",
                        nodataColor="")
    ET.SubElement(ren, "rasterTransparency")
    mmo = ET.SubElement(ren, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Estimated"),
                      ("cumulativeCutLower", "0.02"), ("cumulativeCutUpper", "0.98"), ("stdDevFactor", "2")):
        ET.SubElement(mmo, tag).text = text
    pal = ET.SubElement(ren, "colorPalette")
    for c in classes:
        if nodata is not None and int(c.value) == int(nodata):
            continue
        r, g, b = hex_to_rgb(c.color)
        ET.SubElement(pal, "paletteEntry", value=str(int(c.value)), color=f"#{r:02x}{g:02x}{b:02x}", alpha="255",
                      label=str(c.name))
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0", colorizeRed="255",
                  colorizeGreen="128", colorizeBlue="128", colorizeStrength="100", invertColors="0")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root) if hasattr(ET, "indent") else None
    path = Path(path)
    text = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode")
    path.write_text(text + "\n", encoding="utf-8")
    return path
