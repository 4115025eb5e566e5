"""ArcGIS "Classified Tiles" chip folders: the files ArcGIS reads (``map.txt``, ``esri_accumulated_stats.json``,
``esri_model_definition.emd``) and the ``map.txt`` parser. :mod:`core.chips.folder` reads whole folders.

Format facts (observed in exports of ArcGIS Pro's "Export Training Data For Deep Learning" and in
arcgis.learn's readers):

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
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..classes import hex_to_rgb
from ..errors import ChipFolderError
from .manifest import BandStats, ChipRecord, Manifest

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
    """``[r, g, b]`` of a class colour as ArcGIS stores it; ``[-1, -1, -1]`` when it cannot be read."""
    return list(hex_to_rgb(color, default=(-1, -1, -1)))


def _summary(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {"Min": 0, "Max": 0, "Mean": 0, "Sum": 0, "Count": 0}
    return {
        "Min": float(a.min()),
        "Max": float(a.max()),
        "Mean": float(a.mean()),
        "Sum": float(a.sum()),
        "Count": int(a.size),
    }


def _band_state(stats: Sequence[BandStats]) -> list[dict[str, float]]:
    return [
        {
            "Min": s.min,
            "Max": s.max,
            "Mean": s.mean,
            "StdDev": s.std,
            "M1": s.mean,
            "M2": s.std * s.std * s.count,
            "Num": s.count,
        }
        for s in stats
    ]


def accumulated_stats(manifest: Manifest) -> dict:
    """The ``esri_accumulated_stats.json`` document of a manifest (Classified_Tiles, ClassPixelStats)."""
    classes = manifest.classes
    per_chip = [{int(k): v for k, v in c.class_counts.items()} for c in manifest.chips]
    n_chip_bands = len(manifest.bands) * manifest.num_time_steps
    stats = manifest.band_stats * manifest.num_time_steps
    doc = {
        "Version": "1.0",
        "NumBands": n_chip_bands,
        "TileSizeX": manifest.tile_size,
        "TileSizeY": manifest.tile_size,
        "NumClasses": len(classes),
        "NumTiles": len(manifest.chips),
        "OutputFeatures": False,
        "MetaDataMode": CLASSIFIED_TILES,
        "Classes": [{"ClassValue": c.value, "ClassName": c.name, "Color": _rgb(c.color)} for c in classes],
        "ClassPixelStats": {
            "NumClasses": len(classes),
            "NumImagesTotal": len(manifest.chips),
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
        "Framework": "",
        "ModelConfiguration": "",
        "ModelType": "",
        "InferenceFunction": "",
        "MetaDataMode": CLASSIFIED_TILES,
        "ImageHeight": manifest.tile_size,
        "ImageWidth": manifest.tile_size,
        "ExtractBands": list(range(n)),
        "ImageSpaceUsed": "MAP_SPACE",
        "CropTileMode": "Fixed_Size",
        "IsMultidimensional": manifest.kind == "sequence",
        "Classes": [{"Value": c.value, "Name": c.name, "Color": _rgb(c.color)} for c in manifest.classes],
        "AllTilesStats": [
            {"BandName": s.name, "Min": s.min, "Max": s.max, "Mean": s.mean, "StdDev": s.std} for s in stats
        ],
    }
    if manifest.kind == "pair":
        doc["AllTilesStats2"] = [
            {"BandName": s.name, "Min": s.min, "Max": s.max, "Mean": s.mean, "StdDev": s.std}
            for s in manifest.band_stats2
        ]
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
            raise ChipFolderError(
                f"map.txt line {n} has {len(cols)} columns; expected 'images\\ID  labels\\ID' "
                "or 'images\\ID images2\\ID  labels\\ID'."
            )
        if entry not in seen:
            seen.add(entry)
            out.append(entry)
    return out
