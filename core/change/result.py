"""What a change method produced: :class:`ChangeResult` (from-to change and change vector analysis)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..classes import ClassInfo


@dataclass
class ChangeResult:
    """What a change function produced.

    Attributes:
        output: the change raster. ``qml``: its style. ``table``: transition table CSV or None.
        magnitude: CVA magnitude raster or None. ``probabilities``: change-model probabilities or None.
        counts: pixels per output value. ``threshold``: CVA threshold used (None otherwise).
        entries: output values with names and colours. ``stats``: free-form figures.
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
