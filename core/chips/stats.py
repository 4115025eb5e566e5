"""Statistics of exported chips, streamed chip by chip: per-band statistics and pixels per class.

The band statistics go to ``manifest.json`` (:class:`core.chips.manifest.BandStats`, used by Train
Model to normalise) and to ArcGIS's ``esri_accumulated_stats.json`` (``BandStatsState``: M1, M2, Num);
the class counts to the class table of both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..classes import IGNORE_INDEX, ClassInfo
from .manifest import BandStats


class BandAccumulator:
    """Streaming per-band count, min, max, mean and variance over valid pixels.

    Chunks are merged with the pairwise update of count, mean and ``M2`` of Chan, T. F., Golub, G. H.
    & LeVeque, R. J. (1979), "Updating formulae and a pairwise algorithm for computing sample
    variances", Technical Report STAN-CS-79-773, Stanford University. ``M2`` is the sum of squared
    deviations from the mean, the same quantity ArcGIS stores in ``BandStatsState``
    (std = sqrt(M2 / Num)).
    """

    def __init__(self, n_bands: int) -> None:
        self.n = np.zeros(n_bands, np.int64)
        self.mean = np.zeros(n_bands, np.float64)
        self.m2 = np.zeros(n_bands, np.float64)
        self.min = np.full(n_bands, np.inf)
        self.max = np.full(n_bands, -np.inf)

    def update(self, pixels: np.ndarray) -> None:
        """Add ``(C, N)`` valid pixel values (any numeric dtype)."""
        nb = pixels.shape[1]
        if nb == 0:
            return
        x = pixels.astype(np.float64)
        mean_b = x.sum(axis=1) / nb
        x -= mean_b[:, None]
        m2_b = np.einsum("ij,ij->i", x, x)
        na = self.n.astype(np.float64)
        total = na + nb
        delta = mean_b - self.mean
        self.mean = self.mean + delta * nb / total
        self.m2 = self.m2 + m2_b + delta * delta * na * nb / total
        self.n += nb
        self.min = np.minimum(self.min, pixels.min(axis=1))
        self.max = np.maximum(self.max, pixels.max(axis=1))

    def update_masked(self, data: np.ndarray, valid: np.ndarray) -> None:
        """Add the pixels of ``(C, H, W)`` ``data`` where ``(H, W)`` ``valid`` is True."""
        flat = data.reshape(data.shape[0], -1)
        self.update(flat if valid.all() else flat[:, valid.ravel()])

    def result(self, names: Sequence[str]) -> list[BandStats]:
        """One :class:`BandStats` per band (zeros for a band without valid pixels)."""
        out = []
        for i, name in enumerate(names):
            n = int(self.n[i])
            out.append(
                BandStats(
                    name=name,
                    min=float(self.min[i]) if n else 0.0,
                    max=float(self.max[i]) if n else 0.0,
                    mean=float(self.mean[i]),
                    std=float(np.sqrt(self.m2[i] / n)) if n else 0.0,
                    count=n,
                )
            )
        return out


class ChipTotals:
    """Band statistics (first and second date) and pixels per class over the chips of an export.

    Args:
        n_bands: bands per date of a chip (C).
    """

    def __init__(self, n_bands: int) -> None:
        self.bands = BandAccumulator(n_bands)
        self.bands2 = BandAccumulator(n_bands)
        self.class_pixels = np.zeros(256, np.int64)  # labelled pixels per class value
        self.class_chips = np.zeros(256, np.int64)  # chips holding each class value

    def add(
        self,
        datas: Sequence[np.ndarray],
        valids: Sequence[np.ndarray],
        data2: np.ndarray | None,
        valid2: np.ndarray | None,
        labels: np.ndarray,
    ) -> np.ndarray:
        """Add one chip: ``T x (C, h, w)`` data with ``T x (h, w)`` validity, the second date, ``(h, w)`` labels.

        Returns:
            ``(256,)`` int64 pixels per class value of this chip (IGNORE_INDEX counted as 0).
        """
        if data2 is not None:
            self.bands2.update_masked(data2, valid2)
        for d, v in zip(datas, valids):
            self.bands.update_masked(d, v)
        counts = np.bincount(labels.ravel(), minlength=256)
        counts[IGNORE_INDEX] = 0
        self.class_pixels += counts
        self.class_chips += counts > 0
        return counts

    def classes(self, table: Sequence[ClassInfo], color_of: Callable[[int], str]) -> list[ClassInfo]:
        """``table`` with pixel/chip counts, plus values met in the labels but not in it (``color_of(value)``)."""
        out = {c.value: ClassInfo(c.value, c.name, c.color) for c in table}
        for v in np.nonzero(self.class_pixels)[0]:
            if int(v) not in out:
                out[int(v)] = ClassInfo(int(v), f"class {v}", color_of(int(v)))
        for v, c in out.items():
            c.pixel_count, c.chip_count = int(self.class_pixels[v]), int(self.class_chips[v])
        return [out[v] for v in sorted(out)]


def pooled_stats(stats: Sequence[Sequence[BandStats]]) -> list[BandStats]:
    """Pool per-band statistics of several chip folders: count-weighted mean and variance, overall min and max.

    Args:
        stats: one list of :class:`BandStats` per folder, the same bands in the same order.

    Returns:
        One :class:`BandStats` per band (``count``: the folders' summed pixel counts; a folder whose count
        is 0, e.g. an ArcGIS export without counts, weighs as one pixel). One folder: its statistics.

    The pooled variance is the law of total variance over the folders (Chan, Golub & LeVeque 1979, as
    :class:`BandAccumulator`).
    """
    if len(stats) == 1:
        return list(stats[0])
    out = []
    for bands in zip(*stats):
        n = np.array([max(b.count, 1) for b in bands], dtype=np.float64)
        m = np.array([b.mean for b in bands])
        v = np.array([b.std**2 for b in bands])
        mean = float((n * m).sum() / n.sum())
        var = float((n * (v + (m - mean) ** 2)).sum() / n.sum())
        out.append(
            BandStats(
                bands[0].name, min(b.min for b in bands), max(b.max for b in bands), mean, math.sqrt(var), int(n.sum())
            )
        )
    return out
