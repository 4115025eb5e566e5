"""The codes of a from-to change raster: one per (from class, to class) transition, and its table.

:class:`TransitionScheme` numbers the transitions, names them (``"forest -> cultivated land"``) and
colours them (the 'to' class's colour, paler when unchanged); :func:`write_transition_table` writes
the pixels, m², ha and % of the from-class of every transition as a CSV.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..classes import (
    ClassInfo,
    hex_to_rgb,
    rgb_to_hex,
)
from ..raster.io import atomic_output

#: Colour of the single "no change" value of a ``changed_only`` scheme.
NO_CHANGE_COLOR = "#d9d9d9"


@dataclass
class TransitionScheme:
    """The value of each transition in a from-to change raster.

    ``code = i_from * K_to + i_to + 1`` where ``i_from``/``i_to`` are the positions of the class
    values in ``from_classes``/``to_classes`` (sorted by value); 0 is nodata. With
    ``changed_only`` every pixel whose class value did not change gets the single code
    ``no_change_code = K_from * K_to + 1``.

    Attributes:
        from_classes, to_classes: the classes of the first and second date, sorted by value.
        changed_only: see above.
    """

    from_classes: list[ClassInfo]
    to_classes: list[ClassInfo]
    changed_only: bool = False

    @property
    def n_codes(self) -> int:
        """Number of transition codes (K_from * K_to)."""
        return len(self.from_classes) * len(self.to_classes)

    @property
    def no_change_code(self) -> int:
        """The single "no change" value used when ``changed_only``."""
        return self.n_codes + 1

    @property
    def dtype(self) -> str:
        """``uint8`` when every code fits, else ``uint16``."""
        return "uint8" if self.no_change_code <= 255 else "uint16"

    def code(self, from_value: int, to_value: int) -> int:
        """Code of one transition (before ``changed_only`` merging)."""
        fi = [c.value for c in self.from_classes].index(from_value)
        ti = [c.value for c in self.to_classes].index(to_value)
        return fi * len(self.to_classes) + ti + 1

    def entries(self) -> list[ClassInfo]:
        """Every output value with its name and colour (colour of the 'to' class; paler when unchanged)."""
        out = []
        for f in self.from_classes:
            for t in self.to_classes:
                same = f.value == t.value
                if same and self.changed_only:
                    continue
                name = f"{f.name} (no change)" if same else f"{f.name} -> {t.name}"
                out.append(ClassInfo(self.code(f.value, t.value), name, _pale(t.color) if same else t.color))
        if self.changed_only:
            out.append(ClassInfo(self.no_change_code, "no change", NO_CHANGE_COLOR))
        return out

    def lut_codes(self, before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes of two aligned class arrays; returns ``(codes, valid)`` with codes 0 where invalid."""
        fv = np.array([c.value for c in self.from_classes], dtype=np.int64)
        tv = np.array([c.value for c in self.to_classes], dtype=np.int64)
        fi, fok = _index_in(before, fv)
        ti, tok = _index_in(after, tv)
        ok = fok & tok
        codes = np.where(ok, fi * len(tv) + ti + 1, 0)
        if self.changed_only:
            codes = np.where(ok & (before.astype(np.int64) == after.astype(np.int64)), self.no_change_code, codes)
        return codes, ok


def _index_in(values: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each value in the sorted ``table`` and whether it is there."""
    v = values.astype(np.int64, copy=False)
    pos = np.clip(np.searchsorted(table, v), 0, len(table) - 1)
    return pos, table[pos] == v


def _pale(color: str) -> str:
    """``color`` 60 % of the way to white."""
    return rgb_to_hex([int(c + 0.6 * (255 - c)) for c in hex_to_rgb(color)])


def changed_pixels(scheme: TransitionScheme, pair_counts: np.ndarray) -> int:
    """Pixels whose class value differs between the dates."""
    kt = len(scheme.to_classes)
    return int(
        sum(
            pair_counts[i * kt + j + 1]
            for i, f in enumerate(scheme.from_classes)
            for j, t in enumerate(scheme.to_classes)
            if f.value != t.value
        )
    )


def write_transition_table(
    path: str | os.PathLike, scheme: TransitionScheme, pair_counts: np.ndarray, pixel_m2: float | None
) -> Path:
    """Transition matrix as a long CSV, one row per from-to pair with pixels > 0.

    Columns: ``from_value, from_class, to_value, to_class, code, pixels, m2, ha, percent_of_from``
    (``code`` is the all-transitions code; areas empty when the CRS is unknown). ``percent_of_from``
    = pixels / pixels of the from-class with valid data on both dates × 100.
    """
    kt = len(scheme.to_classes)
    from_tot = {
        f.value: int(pair_counts[1 + i * kt : 1 + (i + 1) * kt].sum()) for i, f in enumerate(scheme.from_classes)
    }
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["from_value", "from_class", "to_value", "to_class", "code", "pixels", "m2", "ha", "percent_of_from"]
        )
        for i, f in enumerate(scheme.from_classes):
            for j, t in enumerate(scheme.to_classes):
                code = i * kt + j + 1
                n = int(pair_counts[code])
                if not n:
                    continue
                m2 = n * pixel_m2 if pixel_m2 else None
                w.writerow(
                    [
                        f.value,
                        f.name,
                        t.value,
                        t.name,
                        code,
                        n,
                        "" if m2 is None else f"{m2:.2f}",
                        "" if m2 is None else f"{m2 / 1e4:.4f}",
                        f"{100.0 * n / from_tot[f.value]:.4f}",
                    ]
                )
    return Path(path)
