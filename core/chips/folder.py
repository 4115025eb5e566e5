"""Reading a chip folder, whoever made it: Export Training Tiles (``manifest.json``) or ArcGIS
"Export Training Data For Deep Learning" (Classified Tiles: ``map.txt`` and
``esri_accumulated_stats.json``, whose fields :mod:`core.chips.arcgis` describes).

The one module that reads both formats, so that :mod:`core.chips.manifest` stays a schema leaf and
:mod:`core.chips.arcgis` a writer of ArcGIS's files.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from ..classes import IGNORE_INDEX, ClassInfo, palette_color, rgb_to_hex
from ..errors import ChipFolderError
from ..raster.grid import crs_unit_name
from .arcgis import CLASSIFIED_TILES, EMD_NAME, MAP_NAME, STATS_NAME, parse_map_txt
from .manifest import MANIFEST_NAME, BandStats, ChipRecord, Manifest


def load_chip_folder(folder: str | os.PathLike) -> Manifest:
    """Read a chip folder made by this plugin (``manifest.json``) or by ArcGIS (Classified Tiles).

    Args:
        folder: the chip folder.

    Returns:
        The manifest; chip paths are relative to ``folder``.

    Raises:
        ChipFolderError: the folder does not exist, is incomplete (no manifest and no ArcGIS
            ``esri_accumulated_stats.json``), or is an ArcGIS export of another metadata format.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ChipFolderError(f"Chip folder {folder} does not exist.")
    mpath = folder / MANIFEST_NAME
    if mpath.exists():
        try:
            return Manifest.from_dict(json.loads(mpath.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError, KeyError) as e:
            raise ChipFolderError(f"{mpath} is corrupt ({e}); export the chips again.") from e
    if (folder / STATS_NAME).exists():
        return read_arcgis_classified_tiles(folder)
    raise ChipFolderError(
        f"{folder} has no manifest.json (an export that did not finish, or not a chip folder) and no "
        "esri_accumulated_stats.json (not an ArcGIS export). Run Export Training Tiles into an empty folder."
    )


# ------------------------------------------------------------------------------ ArcGIS Classified Tiles
def _json_color(value) -> str | None:
    """``[r, g, b]`` of an ArcGIS JSON file as ``"#rrggbb"``; None when missing or not a colour."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (int, float)) for v in value[:3]):
        return None
    try:
        return rgb_to_hex(value)
    except ValueError:
        return None


def _classes(stats: dict, emd: dict) -> list[ClassInfo]:
    """The class table of ``Classes[]`` with counts from ``ClassPixelStats``/``FeatureStats``, sorted by value."""
    emd_colors = {c.get("Value"): c.get("Color") for c in emd.get("Classes", []) if isinstance(c, dict)}
    block = stats.get("ClassPixelStats") or stats.get("FeatureStats") or {}
    images = block.get("NumImagesPerClass") or []
    pixels = (stats.get("ClassPixelStats") or {}).get("NumPixelsPerClass") or []
    classes = []
    for i, c in enumerate(stats.get("Classes") or []):
        try:
            value = int(c["ClassValue"])
        except (KeyError, TypeError, ValueError):
            raise ChipFolderError(f"{STATS_NAME} has a class without an integer ClassValue: {c!r}.") from None
        color = _json_color(c.get("Color")) or _json_color(emd_colors.get(value)) or palette_color(i)
        classes.append(
            ClassInfo(
                value=value,
                name=str(c.get("ClassName", value)),
                color=color,
                pixel_count=int(pixels[i]) if i < len(pixels) else 0,
                chip_count=int(images[i]) if i < len(images) else 0,
            )
        )
    bad = [c for c in classes if not 0 <= c.value < IGNORE_INDEX]
    if bad:
        listed = ", ".join(f"{c.value} ({c.name!r})" for c in bad)
        raise ChipFolderError(
            f"{STATS_NAME} has class values outside 0-{IGNORE_INDEX - 1}: {listed}. Label chips are read as uint8 "
            f"class values and {IGNORE_INDEX} is reserved for unlabelled/nodata pixels (the ignore index), so "
            "these classes would silently be left out of training. Reclassify them to free values between "
            f"0 and {IGNORE_INDEX - 1} in the label raster or class field and export the chips again."
        )
    return sorted(classes, key=lambda c: c.value)


def _band_stats(stats: dict, emd: dict, key: str, names: list[str]) -> list[BandStats]:
    """Band statistics: ``AllTilesStats`` of the .emd when real, else ``BandStatsState`` (M1, M2, Num)."""
    tiles = emd.get("AllTilesStats" + key[len("BandStatsState") :])
    state = stats.get(key) or []
    if (
        isinstance(tiles, list)
        and tiles
        and all(isinstance(t, dict) and isinstance(t.get("Mean"), (int, float)) for t in tiles)
    ):
        return [
            BandStats(
                names[i] if i < len(names) else t.get("BandName") or f"B{i + 1}",
                float(t.get("Min", 0)),
                float(t.get("Max", 0)),
                float(t["Mean"]),
                float(t.get("StdDev", 0)),
                int(state[i].get("Num", 0)) if i < len(state) else 0,
            )
            for i, t in enumerate(tiles)
        ]
    out = []
    for i, s in enumerate(state):
        num = float(s.get("Num", 0) or 0)
        std = float(np.sqrt(float(s.get("M2", 0)) / num)) if num > 0 else float(s.get("StdDev", 0))
        out.append(
            BandStats(
                names[i] if i < len(names) else f"B{i + 1}",
                float(s.get("Min", 0)),
                float(s.get("Max", 0)),
                float(s.get("M1", s.get("Mean", 0))),
                std,
                int(num),
            )
        )
    return out


def _names(props: dict | None, n: int) -> list[str]:
    given = (props or {}).get("BandNames") or []
    return [given[i] if i < len(given) and given[i] else f"B{i + 1}" for i in range(n)]


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError) as e:
        raise ChipFolderError(f"{what} {path} cannot be read ({e}); export the chips again.") from e


def _read_metadata(folder: Path) -> tuple[dict, dict, str]:
    """``esri_accumulated_stats.json``, the ``.emd`` ({} when absent) and the metadata mode (Classified_Tiles)."""
    stats = _read_json(folder / STATS_NAME, "ArcGIS statistics file")
    emd = _read_json(folder / EMD_NAME, "ArcGIS model definition") if (folder / EMD_NAME).exists() else {}
    mode = stats.get("MetaDataMode") or emd.get("MetaDataMode") or CLASSIFIED_TILES
    if str(mode).lower() != CLASSIFIED_TILES.lower():
        raise ChipFolderError(
            f"{folder.name} is an ArcGIS export in the {mode!r} metadata format, which has no label rasters; "
            "pixel classification needs 'Classified Tiles'. Export it again from ArcGIS with "
            "metadata_format='Classified_Tiles', or use Export Training Tiles."
        )
    return stats, emd, mode


def _present_entries(folder: Path) -> tuple[list, list]:
    """All ``map.txt`` entries, and those whose image and label exist on disk."""
    if not (folder / MAP_NAME).exists():
        raise ChipFolderError(f"{folder} has no map.txt; the ArcGIS export is incomplete.")
    entries = parse_map_txt((folder / MAP_NAME).read_text(encoding="utf-8-sig"))
    present = [e for e in entries if (folder / e[0]).exists() and (e[2] is None or (folder / e[2]).exists())]
    if not present:
        raise ChipFolderError(f"None of the {len(entries)} chips listed in {folder / MAP_NAME} exists on disk.")
    if any(e[2] is None or not re.search(r"\.(tif|tiff|png|jpg|img|mrf)$", e[2], re.I) for e in present):
        raise ChipFolderError(f"map.txt of {folder.name} does not list label rasters; not a Classified Tiles export.")
    return entries, present


@dataclass
class _ChipLayout:
    """Chips placed on a virtual pixel grid, and what the first chip says about all of them."""

    chips: list[ChipRecord]
    tile: int  # chip edge, pixels
    stride: int  # smallest offset between chips, pixels
    block: int  # spatial block edge, pixels
    pixel_size: list[float]  # CRS units
    count: int  # bands of an image chip
    crs: object
    nodata: float | None


def _layout(folder: Path, present: list, tile: int) -> _ChipLayout:
    """Windows on a grid whose origin is the upper-left corner of all chips (they snap to one pixel grid)."""
    metas = []
    for img, _img2, _lab in present:
        with rasterio.open(folder / img) as ds:
            metas.append((ds.transform, ds.width, ds.height, ds.count, ds.crs, ds.nodata))
    px, py = metas[0][0].a, metas[0][0].e
    x0, y0 = min(m[0].c for m in metas), max(m[0].f for m in metas)
    cols = [int(round((m[0].c - x0) / px)) for m in metas]
    rows = [int(round((m[0].f - y0) / py)) for m in metas]
    tile = tile or metas[0][1]
    steps = sorted(
        {abs(a - b) for a in set(cols) for b in set(cols) if a != b}
        | {abs(a - b) for a in set(rows) for b in set(rows) if a != b}
    )
    block = 4 * tile
    chips = [
        ChipRecord(
            id=Path(img).stem,
            image=img,
            label=lab,
            image2=img2,
            window=[c, r, m[1], m[2]],
            transform=list(m[0])[:6],
            block=f"{r // block}_{c // block}",
        )
        for (img, img2, lab), m, c, r in zip(present, metas, cols, rows)
    ]
    return _ChipLayout(
        chips, tile, int(steps[0] if steps else tile), block, [abs(px), abs(py)], metas[0][3], metas[0][4], metas[0][5]
    )


def read_arcgis_classified_tiles(folder: str | os.PathLike) -> Manifest:
    """Read an ArcGIS "Classified Tiles" export into a :class:`Manifest`.

    Chip windows are reconstructed on a virtual grid whose origin is the upper-left corner of all
    chips (chips snap to one pixel grid in an export), so spatial blocks (``4 * tile`` pixels) work
    for leakage-free splits; the stride is the smallest offset between chips (tile size if none).

    Args:
        folder: the export folder (``map.txt``, ``esri_accumulated_stats.json``, ``images/``...).

    Returns:
        Manifest with ``origin="arcgis"``; ``labelled_fraction``/``class_counts`` of chips are unknown
        (1.0 / empty), class pixel counts come from ``ClassPixelStats`` when present.

    Raises:
        ChipFolderError: missing files, a metadata mode other than Classified_Tiles (object
            detection or Export_Tiles folders have no label rasters), or no chip on disk.
    """
    folder = Path(folder)
    stats, emd, mode = _read_metadata(folder)
    entries, present = _present_entries(folder)
    lay = _layout(folder, present, int(stats.get("TileSizeX") or 0))
    names = _names(stats.get("InputRastersProps"), int(stats.get("NumBands") or lay.count))
    kind = "pair" if any(e[1] for e in present) else "single"
    bands2, stats2 = [], []
    if kind == "pair":
        with rasterio.open(folder / present[0][1]) as ds2:
            bands2 = _names(stats.get("InputRastersProps2"), ds2.count)
        stats2 = _band_stats(stats, emd, "BandStatsState2", bands2)
    block_kind = next((k for k in ("ClassPixelStats", "FeatureStats") if k in stats), None)
    return Manifest(
        kind=kind,
        crs_wkt=lay.crs.to_wkt() if lay.crs else "",
        pixel_size=lay.pixel_size,
        pixel_size_units=crs_unit_name(lay.crs),
        tile_size=lay.tile,
        stride=lay.stride,
        bands=names,
        band_stats=_band_stats(stats, emd, "BandStatsState", names),
        classes=_classes(stats, emd),
        chips=lay.chips,
        bands2=bands2,
        band_stats2=stats2,
        ignore_value=IGNORE_INDEX,
        nodata=lay.nodata,
        block_size=lay.block,
        sources={
            "arcgis_folder": str(folder),
            "map_entries": len(entries),
            "missing_chips": len(entries) - len(present),
            "metadata_mode": mode,
            "stats_block": block_kind,
        },
        origin="arcgis",
        software="ArcGIS Export Training Data For Deep Learning",
    )
