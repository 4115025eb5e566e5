"""ArcGIS "Classified Tiles" chip folders: write map.txt / esri_accumulated_stats.json, read whole folders.

Format facts (from ArcGIS Pro exports, see ``shared/data/interop/SOURCE.md`` sections 1-4):

* ``map.txt``: one chip per line, Windows backslashes, CRLF, columns separated by spaces (two before
  ``labels``); 2 columns ``images\\ID.tif  labels\\ID.tif`` or 3 with ``images2\\ID.tif`` in the middle;
  9- or 12-digit ids, not always contiguous, lines may repeat, entries may point to missing chips.
* ``esri_accumulated_stats.json``: ``MetaDataMode`` (only ``Classified_Tiles`` has raster labels;
  ``PASCAL_VOC_rectangles``, ``KITTI_rectangles``, ``Export_Tiles``... do not), ``Classes[]`` =
  ``{ClassValue, ClassName[, Color]}``, a ``ClassPixelStats`` block (raster labels) or ``FeatureStats``
  (feature labels), ``BandStatsState[]`` = ``{Min, Max, Mean, StdDev, M1, M2, Num}`` where ArcGIS stores
  Mean/StdDev as 0: mean = M1, std = sqrt(M2 / Num) (as arcgis.learn computes ``AllTilesStats``).
  ``BandStatsState2``/``InputRastersProps2`` describe ``images2``; ``NumBands`` counts the first raster only.
* ``esri_model_definition.emd``: ``Classes[] = {Value, Name, Color}``, ``AllTilesStats[]`` with real
  mean/std; fields may be placeholder strings (``"e.g. 256"``).

Chips carry their georeferencing in the GeoTIFF or in a world file (``.tfw``) that GDAL reads.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio

from ..errors import ChipFolderError
from ..raster.grid import IGNORE_INDEX
from .labels import PALETTE
from .manifest import BandStats, ChipRecord, ClassInfo, Manifest

STATS_NAME = "esri_accumulated_stats.json"
EMD_NAME = "esri_model_definition.emd"
MAP_NAME = "map.txt"
CLASSIFIED_TILES = "Classified_Tiles"


# ------------------------------------------------------------------------------ writing
def write_map_txt(folder: str | os.PathLike, chips: Sequence[ChipRecord]) -> Path:
    """Write ``map.txt`` exactly as ArcGIS does (backslashes, two spaces before labels, CRLF).

    Returns:
        The path written.
    """
    lines = []
    for c in chips:
        img = c.image.replace("/", "\\")
        lab = (c.label or "").replace("/", "\\")
        if c.image2:
            lines.append(f"{img} {c.image2.replace('/', chr(92))}  {lab}\r\n")
        else:
            lines.append(f"{img}  {lab} \r\n")
    path = Path(folder) / MAP_NAME
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.writelines(lines)
    return path


def _rgb(color: str) -> list[int]:
    s = color.lstrip("#")
    try:
        return [int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16)]
    except (ValueError, IndexError):
        return [-1, -1, -1]


def _summary(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {"Min": 0, "Max": 0, "Mean": 0, "Sum": 0, "Count": 0}
    return {"Min": float(a.min()), "Max": float(a.max()), "Mean": float(a.mean()), "Sum": float(a.sum()),
            "Count": int(a.size)}


def _band_state(stats: Sequence[BandStats]) -> list[dict[str, float]]:
    return [{"Min": s.min, "Max": s.max, "Mean": s.mean, "StdDev": s.std, "M1": s.mean,
             "M2": s.std * s.std * s.count, "Num": s.count} for s in stats]


def accumulated_stats(manifest: Manifest) -> dict:
    """The ``esri_accumulated_stats.json`` document of a manifest (Classified_Tiles, ClassPixelStats)."""
    classes = manifest.classes
    per_chip = [{int(k): v for k, v in c.class_counts.items()} for c in manifest.chips]
    n_chip_bands = len(manifest.bands) * manifest.num_time_steps
    stats = manifest.band_stats * manifest.num_time_steps
    doc = {
        "Version": "1.0", "NumBands": n_chip_bands, "TileSizeX": manifest.tile_size,
        "TileSizeY": manifest.tile_size, "NumClasses": len(classes), "NumTiles": len(manifest.chips),
        "OutputFeatures": False, "MetaDataMode": CLASSIFIED_TILES,
        "Classes": [{"ClassValue": c.value, "ClassName": c.name, "Color": _rgb(c.color)} for c in classes],
        "ClassPixelStats": {
            "NumClasses": len(classes), "NumImagesTotal": len(manifest.chips),
            "NumImagesPerClass": [c.chip_count for c in classes],
            "NumPixelsPerClass": [c.pixel_count for c in classes],
            "NumClassesPerImage": _summary([len(p) for p in per_chip]),
            "PixelsPerClass": [_summary([p[c.value] for p in per_chip if c.value in p]) for c in classes],
        },
        "InputRastersProps": {"RasterCount": 1, "SensorName": "", "BandNames": list(manifest.bands)},
        "BandStatsState": _band_state(stats),
    }
    if manifest.kind == "pair":
        doc["InputRastersProps2"] = {"RasterCount": 1, "SensorName": "", "BandNames": list(manifest.bands2)}
        doc["BandStatsState2"] = _band_state(manifest.band_stats2)
    return doc


def write_accumulated_stats(folder: str | os.PathLike, manifest: Manifest) -> Path:
    """Write ``esri_accumulated_stats.json`` (see :func:`accumulated_stats`). Returns its path."""
    path = Path(folder) / STATS_NAME
    path.write_text(json.dumps(accumulated_stats(manifest), indent=2), encoding="utf-8")
    return path


def write_model_definition(folder: str | os.PathLike, manifest: Manifest) -> Path:
    """Write the template ``esri_model_definition.emd`` that ArcGIS puts beside an export."""
    n = len(manifest.bands) * manifest.num_time_steps
    stats = manifest.band_stats * manifest.num_time_steps
    doc = {
        "Framework": "", "ModelConfiguration": "", "ModelType": "", "InferenceFunction": "",
        "MetaDataMode": CLASSIFIED_TILES, "ImageHeight": manifest.tile_size, "ImageWidth": manifest.tile_size,
        "ExtractBands": list(range(n)), "ImageSpaceUsed": "MAP_SPACE", "CropTileMode": "Fixed_Size",
        "IsMultidimensional": manifest.kind == "sequence",
        "Classes": [{"Value": c.value, "Name": c.name, "Color": _rgb(c.color)} for c in manifest.classes],
        "AllTilesStats": [{"BandName": s.name, "Min": s.min, "Max": s.max, "Mean": s.mean, "StdDev": s.std}
                          for s in stats],
    }
    if manifest.kind == "pair":
        doc["AllTilesStats2"] = [{"BandName": s.name, "Min": s.min, "Max": s.max, "Mean": s.mean,
                                  "StdDev": s.std} for s in manifest.band_stats2]
    path = Path(folder) / EMD_NAME
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ reading
def parse_map_txt(text: str) -> list[tuple[str, str | None, str | None]]:
    """Parse ``map.txt`` into ``(image, image2, label)`` relative paths with forward slashes.

    Tolerates CRLF/LF, backslashes, any whitespace between columns, trailing spaces, 2 or 3 columns
    and repeated lines (kept once, first occurrence).

    Raises:
        ChipFolderError: a line has 1 or more than 3 columns.
    """
    out, seen = [], set()
    for n, line in enumerate(text.splitlines(), 1):
        cols = [c.replace("\\", "/") for c in line.split()]
        if not cols:
            continue
        if len(cols) == 2:
            entry = (cols[0], None, cols[1])
        elif len(cols) == 3:
            entry = (cols[0], cols[1], cols[2])
        else:
            raise ChipFolderError(f"map.txt line {n} has {len(cols)} columns; expected 'images\\ID  labels\\ID' "
                                  "or 'images\\ID images2\\ID  labels\\ID'.")
        if entry not in seen:
            seen.add(entry)
            out.append(entry)
    return out


def _hex(color) -> str | None:
    if isinstance(color, (list, tuple)) and len(color) >= 3 and all(isinstance(v, (int, float)) for v in color[:3]):
        if all(0 <= v <= 255 for v in color[:3]):
            return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in color[:3]))
    return None


def _classes(stats: dict, emd: dict) -> list[ClassInfo]:
    raw = stats.get("Classes") or []
    emd_colors = {c.get("Value"): c.get("Color") for c in emd.get("Classes", []) if isinstance(c, dict)}
    block = stats.get("ClassPixelStats") or stats.get("FeatureStats") or {}
    images = block.get("NumImagesPerClass") or []
    pixels = (stats.get("ClassPixelStats") or {}).get("NumPixelsPerClass") or []
    classes = []
    for i, c in enumerate(raw):
        try:
            value = int(c["ClassValue"])
        except (KeyError, TypeError, ValueError):
            raise ChipFolderError(f"{STATS_NAME} has a class without an integer ClassValue: {c!r}.") from None
        color = _hex(c.get("Color")) or _hex(emd_colors.get(value)) or PALETTE[i % len(PALETTE)]
        classes.append(ClassInfo(value=value, name=str(c.get("ClassName", value)), color=color,
                                 pixel_count=int(pixels[i]) if i < len(pixels) else 0,
                                 chip_count=int(images[i]) if i < len(images) else 0))
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
    emd_key = "AllTilesStats" + key[len("BandStatsState"):]
    tiles = emd.get(emd_key)
    state = stats.get(key) or []
    out = []
    if isinstance(tiles, list) and tiles and all(isinstance(t, dict) and isinstance(t.get("Mean"), (int, float))
                                                 for t in tiles):
        for i, t in enumerate(tiles):
            num = int(state[i].get("Num", 0)) if i < len(state) else 0
            out.append(BandStats(names[i] if i < len(names) else t.get("BandName") or f"B{i + 1}",
                                 float(t.get("Min", 0)), float(t.get("Max", 0)), float(t["Mean"]),
                                 float(t.get("StdDev", 0)), num))
        return out
    for i, s in enumerate(state):
        num = float(s.get("Num", 0) or 0)
        std = float(np.sqrt(float(s.get("M2", 0)) / num)) if num > 0 else float(s.get("StdDev", 0))
        out.append(BandStats(names[i] if i < len(names) else f"B{i + 1}", float(s.get("Min", 0)),
                             float(s.get("Max", 0)), float(s.get("M1", s.get("Mean", 0))), std, int(num)))
    return out


def _names(props: dict | None, n: int) -> list[str]:
    given = (props or {}).get("BandNames") or []
    return [given[i] if i < len(given) and given[i] else f"B{i + 1}" for i in range(n)]


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError) as e:
        raise ChipFolderError(f"{what} {path} cannot be read ({e}); export the chips again.") from e


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
    stats = _read_json(folder / STATS_NAME, "ArcGIS statistics file")
    emd = _read_json(folder / EMD_NAME, "ArcGIS model definition") if (folder / EMD_NAME).exists() else {}
    mode = stats.get("MetaDataMode") or emd.get("MetaDataMode") or CLASSIFIED_TILES
    if str(mode).lower() != CLASSIFIED_TILES.lower():
        raise ChipFolderError(
            f"{folder.name} is an ArcGIS export in the {mode!r} metadata format, which has no label rasters; "
            "pixel classification needs 'Classified Tiles'. Export it again from ArcGIS with "
            "metadata_format='Classified_Tiles', or use Export Training Tiles."
        )
    if not (folder / MAP_NAME).exists():
        raise ChipFolderError(f"{folder} has no map.txt; the ArcGIS export is incomplete.")
    entries = parse_map_txt((folder / MAP_NAME).read_text(encoding="utf-8-sig"))
    present = [e for e in entries if (folder / e[0]).exists() and (e[2] is None or (folder / e[2]).exists())]
    if not present:
        raise ChipFolderError(f"None of the {len(entries)} chips listed in {folder / MAP_NAME} exists on disk.")
    if any(e[2] is None or not re.search(r"\.(tif|tiff|png|jpg|img|mrf)$", e[2], re.I) for e in present):
        raise ChipFolderError(f"map.txt of {folder.name} does not list label rasters; not a Classified Tiles export.")
    tile = int(stats.get("TileSizeX") or 0)
    metas = []
    for img, _img2, _lab in present:
        with rasterio.open(folder / img) as ds:
            metas.append((ds.transform, ds.width, ds.height, ds.count, ds.crs, ds.nodata))
    t0 = metas[0][0]
    px, py = t0.a, t0.e
    x0 = min(m[0].c for m in metas)
    y0 = max(m[0].f for m in metas)
    cols = [int(round((m[0].c - x0) / px)) for m in metas]
    rows = [int(round((m[0].f - y0) / py)) for m in metas]
    tile = tile or metas[0][1]
    steps = sorted({abs(a - b) for a in set(cols) for b in set(cols) if a != b}
                   | {abs(a - b) for a in set(rows) for b in set(rows) if a != b})
    stride = steps[0] if steps else tile
    block = 4 * tile
    chips = []
    for (img, img2, lab), m, c, r in zip(present, metas, cols, rows):
        cid = Path(img).stem
        chips.append(ChipRecord(id=cid, image=img, label=lab, image2=img2, window=[c, r, m[1], m[2]],
                                transform=list(m[0])[:6], block=f"{r // block}_{c // block}"))
    nb = int(stats.get("NumBands") or metas[0][3])
    names = _names(stats.get("InputRastersProps"), nb)
    kind = "pair" if any(e[1] for e in present) else "single"
    bands2, stats2 = [], []
    if kind == "pair":
        with rasterio.open(folder / present[0][1]) as ds2:
            n2 = ds2.count
        bands2 = _names(stats.get("InputRastersProps2"), n2)
        stats2 = _band_stats(stats, emd, "BandStatsState2", bands2)
    crs = metas[0][4]
    return Manifest(
        kind=kind, crs_wkt=crs.to_wkt() if crs else "", pixel_size=[abs(px), abs(py)],
        pixel_size_units="degree" if crs is not None and crs.is_geographic else "metre",
        tile_size=tile, stride=int(stride), bands=names, band_stats=_band_stats(stats, emd, "BandStatsState", names),
        classes=_classes(stats, emd), chips=chips, bands2=bands2, band_stats2=stats2,
        ignore_value=IGNORE_INDEX, nodata=metas[0][5], block_size=block,
        sources={"arcgis_folder": str(folder), "map_entries": len(entries), "missing_chips": len(entries) - len(present),
                 "metadata_mode": mode, "stats_block": "ClassPixelStats" if "ClassPixelStats" in stats
                 else ("FeatureStats" if "FeatureStats" in stats else None)},
        origin="arcgis", software="ArcGIS Export Training Data For Deep Learning",
    )
