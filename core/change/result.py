"""What a change method produced: :class:`ChangeResult` (from-to change and change vector analysis)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import provenance
from ..classes import ClassInfo
from ..feedback import Feedback
from ..raster.polygons import PolygonOptions, polygonize_classes


@dataclass
class ChangeResult:
    """What a change function produced.

    Attributes:
        output: the change raster. ``qml``: its style. ``table``: transition table CSV or None.
        magnitude: CVA magnitude raster or None. ``probabilities``: change-model probabilities or None.
        counts: pixels per output value. ``threshold``: CVA threshold used (None otherwise).
        entries: output values with names and colours. ``stats``: free-form figures.
        polygons: the change polygons (GeoPackage) or None.
    """

    output: Path
    qml: Path | None = None
    table: Path | None = None
    magnitude: Path | None = None
    probabilities: Path | None = None
    counts: dict[int, int] = field(default_factory=dict)
    threshold: float | None = None
    entries: list[ClassInfo] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    polygons: Path | None = None


def run_tags(tool: str, options: Any) -> dict[str, str]:
    """Provenance metadata items (:mod:`core.provenance`) of a change run without a model: options and both dates."""
    return provenance.for_run(tool, options, [options.before, options.after]).tags()


def change_polygons(options: Any, entries: list[ClassInfo], tags: dict[str, str], fb: Feedback) -> Path | None:
    """The polygons of the change raster ``options.output`` when ``options.polygons_path`` is set (else None).

    Uses :func:`core.raster.polygons.polygonize_classes` with ``options.polygons`` (:class:`PolygonOptions`).
    """
    if not getattr(options, "polygons_path", None):
        return None
    o: PolygonOptions = options.polygons
    res = polygonize_classes(options.output, options.polygons_path, entries, o, tags, fb)
    fb.info(f"Change polygons: {res.features} written, {res.dropped} below the minimum mapping unit left out.")
    return res.path
