"""The chip-folder manifest: what Export Training Tiles writes and Train Model reads.

A chip folder holds ``images/`` (first date, or the whole sequence), ``images2/`` (second date of a
change pair), ``labels/`` (uint8 class values, :data:`IGNORE_INDEX` = no label), ``map.txt`` and
``esri_accumulated_stats.json`` (ArcGIS "Classified Tiles") and ``manifest.json`` (this schema).
``manifest.json`` is written last: a folder without it is incomplete (or ArcGIS-made).
:func:`core.chips.folder.load_chip_folder` reads either kind of folder.

Sequence chips (``kind == "sequence"``) are one GeoTIFF of ``T * C`` bands in time-major layout:
band ``t * C + c`` (0-based) is band ``c`` of date ``t``; :meth:`Manifest.bands` lists the C
per-date band names and ``time_steps`` the T dates, oldest first.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..classes import IGNORE_INDEX, ClassInfo
from ..errors import ChipFolderError
from ..raster.grid import RasterGrid
from ..raster.io import atomic_output

MANIFEST_NAME = "manifest.json"
FORMAT = "deeplandcover-chips"
VERSION = 1

ChipKind = Literal["single", "pair", "sequence"]


@dataclass
class BandStats:
    """Statistics of one band over valid (non-nodata) pixels of the exported chips, raster units."""

    name: str
    min: float
    max: float
    mean: float
    std: float
    count: int = 0


@dataclass
class ChipRecord:
    """One chip.

    Attributes:
        id: zero-padded id, also the file stem (``"000000012"``).
        image: path relative to the folder (``"images/000000012.tif"``).
        label: label chip path, relative.
        image2: second-date chip (pairs), relative, or None.
        window: ``[col_off, row_off, width, height]`` in pixels of the source raster.
        transform: the chip's geotransform ``[a, b, c, d, e, f]`` (rasterio/Affine order).
        block: spatial block id ``"r_c"`` used for leakage-free train/validation splits.
        labelled_fraction: share of the chip's pixels with a label (not IGNORE_INDEX), 0..1.
        class_counts: pixels per class value (keys are str of the value, JSON-friendly).
    """

    id: str
    image: str
    label: str | None
    window: list[int]
    transform: list[float]
    block: str = "0_0"
    image2: str | None = None
    labelled_fraction: float = 1.0
    class_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Manifest:
    """Everything Train Model needs to know about a chip folder (see module docstring).

    Attributes:
        kind: ``"single"``, ``"pair"`` (images + images2) or ``"sequence"`` (T*C-band chips).
        crs_wkt: CRS of the chips as WKT.
        pixel_size: ``[x, y]`` in CRS units; ``pixel_size_units`` names them (``"metre"``, ``"degree"``,
            ``"pixel"`` without a CRS; :func:`core.raster.grid.crs_unit_name`).
        tile_size, stride: pixels.
        bands: per-date band names, C of them; ``bands2`` for the second date of a pair.
        band_stats: one per band of ``bands`` (sequence: pooled over dates); ``band_stats2`` for images2.
        time_steps: ISO dates of a sequence (T), else empty.
        classes: the class table, sorted by value.
        ignore_value: label value meaning "no label" (255).
        nodata: nodata value of the source imagery, or None.
        block_size: spatial block edge in pixels.
        chips: one record per chip.
        sources: source file paths and label description, free-form.
        origin: ``"deeplandcover"`` or ``"arcgis"`` (read from an ArcGIS export).
    """

    kind: ChipKind
    crs_wkt: str
    pixel_size: list[float]
    tile_size: int
    stride: int
    bands: list[str]
    band_stats: list[BandStats]
    classes: list[ClassInfo]
    chips: list[ChipRecord]
    pixel_size_units: str = "metre"
    bands2: list[str] = field(default_factory=list)
    band_stats2: list[BandStats] = field(default_factory=list)
    time_steps: list[str] = field(default_factory=list)
    ignore_value: int = IGNORE_INDEX
    nodata: float | None = None
    block_size: int = 0
    sources: dict[str, Any] = field(default_factory=dict)
    origin: str = "deeplandcover"
    created: str = ""
    software: str = ""

    @property
    def num_time_steps(self) -> int:
        """T for a sequence, 1 otherwise."""
        return max(1, len(self.time_steps)) if self.kind == "sequence" else 1

    @property
    def class_values(self) -> list[int]:
        """Class values in table order (model output channel k predicts ``class_values[k]``)."""
        return [c.value for c in self.classes]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with ``format``/``version`` keys."""
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        """Inverse of :meth:`to_dict`.

        Raises:
            ChipFolderError: not a deeplandcover manifest, or a newer version.
        """
        if d.get("format") != FORMAT:
            raise ChipFolderError(f"Not a Deep Land Cover chip manifest (format={d.get('format')!r}).")
        if int(d.get("version", 0)) > VERSION:
            raise ChipFolderError(
                f"Chip manifest version {d['version']} is newer than this plugin reads ({VERSION}); update the plugin."
            )
        d = {k: v for k, v in d.items() if k not in ("format", "version")}
        d["band_stats"] = [BandStats(**b) for b in d.get("band_stats", [])]
        d["band_stats2"] = [BandStats(**b) for b in d.get("band_stats2", [])]
        d["classes"] = [ClassInfo(**c) for c in d.get("classes", [])]
        d["chips"] = [ChipRecord(**c) for c in d.get("chips", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``manifest.json`` atomically (:func:`core.raster.io.atomic_output`). Returns its path."""
        path = Path(folder) / MANIFEST_NAME
        with atomic_output(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        return path


def default_block_size(grid: RasterGrid, tile_size: int) -> int:
    """Edge (pixels) of the spatial blocks that train/validation splits keep together.

    ``4 * tile_size`` (blocks much larger than a chip, so little leakage at block borders), but at
    most half the raster's shorter side, so a small raster still has several blocks to split.
    """
    return max(tile_size, min(4 * tile_size, min(grid.width, grid.height) // 2))
