"""torch Datasets over chip folders, and the leakage-free spatial-block train/validation split.

Chips are read with rasterio through the folder's manifest (:func:`core.manifest.load_chip_folder`,
ours or ArcGIS-made), normalised with :func:`core.raster.normalize` and the manifest band statistics,
nodata set to 0 in the image and to :data:`IGNORE_INDEX` in the target (seed 000_92b8837726c3be0f.txt:
incomplete tiles are kept; their nodata pixels are simply excluded from the loss), class values
mapped to indices ``0..K-1`` of the class table. Dihedral augmentation (flips and 90-degree
rotations, seed 002_5f5c797ac4c9541b.txt).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
import torch
from torch.utils.data import Dataset

from ..chips.manifest import ChipRecord, Manifest
from ..errors import ChipFolderError, InputError
from ..preprocessing.normalize import normalize, valid_mask
from ..raster.grid import IGNORE_INDEX


def class_lut(class_values: Sequence[int]) -> np.ndarray:
    """Lookup table ``(256,) uint8``: class value -> index in ``class_values``, anything else -> 255."""
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for i, v in enumerate(class_values):
        if 0 <= int(v) < 255:
            lut[int(v)] = i
    return lut


def dihedral(arrays: Sequence[np.ndarray], k: int) -> list[np.ndarray]:
    """Apply dihedral transform ``k`` (0..7) to the last two axes of every array.

    ``k % 4`` quarter turns, then a left-right flip when ``k >= 4``: the 8 symmetries of a square.
    """
    out = []
    for a in arrays:
        a = np.rot90(a, k % 4, axes=(-2, -1))
        if k >= 4:
            a = a[..., ::-1]
        out.append(np.ascontiguousarray(a))
    return out


class ChipDataset(Dataset):
    """Chips of one folder as ``(image, target)`` tensors.

    Args:
        folder: the chip folder (paths in the manifest are relative to it).
        manifest: its manifest.
        indices: which chips (indices into ``manifest.chips``); all when None.
        class_values: the class table to map to (index k = ``class_values[k]``); default the manifest's.
        augment: random dihedral transform per item (uses torch's global RNG, so ``torch.manual_seed``
            makes it reproducible).
        cache: keep decoded chips in memory after the first read (chips are small; this keeps the
            data pipeline far below the model step's time).
        spectral_indices: index names (``["NDVI", "NDWI"]``, :mod:`core.indices`, seed 003) appended
            after each date's normalised bands, computed from the raw bands (not standardised).
        sequence_length: L dates per item of a sequence folder (0 or T = all T dates).
        random_sequences: with L < T, each item draws L distinct dates at random, sorted by time
            (seed 000_92b8837726c3be0f.txt, the FCN+LSTM that "randomly builds a new sequence of
            images"; torch's global RNG); otherwise the fixed, evenly spaced dates of
            :func:`fixed_dates`.

    Items:
        ``image``: ``(C, H, W)`` float32 (single), ``(2C, H, W)`` (pair: date 1 bands then date 2),
        ``(T, C, H, W)`` (sequence, from the time-major T*C-band chip; ``(L, C, H, W)`` with
        ``sequence_length``), C grown by the index channels; ``target``: ``(H, W)`` int64
        in ``0..K-1`` or 255 (ignored). H = W = ``manifest.tile_size`` (smaller edge chips are padded
        with nodata).
    """

    def __init__(self, folder: str | os.PathLike, manifest: Manifest, indices: Sequence[int] | None = None,
                 class_values: Sequence[int] | None = None, augment: bool = False, cache: bool = True,
                 spectral_indices: Sequence[str] = (), sequence_length: int = 0, random_sequences: bool = False) -> None:
        self.folder = Path(folder)
        self.manifest = manifest
        self.records: list[ChipRecord] = [manifest.chips[i] for i in (indices if indices is not None else range(len(manifest.chips)))]
        self.lut = class_lut(class_values if class_values is not None else manifest.class_values)
        self.augment = augment
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None
        m = manifest
        self.c = len(m.bands)
        self.t = m.num_time_steps
        self.mean = [b.mean for b in m.band_stats]
        self.std = [b.std for b in m.band_stats]
        self.mean2 = [b.mean for b in (m.band_stats2 or m.band_stats)]
        self.std2 = [b.std for b in (m.band_stats2 or m.band_stats)]
        if len(self.mean) != self.c:
            raise ChipFolderError(f"{folder}: manifest has {len(self.mean)} band statistics for {self.c} bands; export the chips again.")
        self.spectral_indices = list(spectral_indices)
        if self.spectral_indices:
            from ..preprocessing.indices import band_positions

            band_positions(self.spectral_indices, m.bands)  # BandMismatchError naming the missing band
            if m.kind == "pair":
                band_positions(self.spectral_indices, m.bands2 or m.bands)
        self.seq_len = int(sequence_length) if m.kind == "sequence" and 0 < sequence_length < self.t else 0
        if m.kind == "sequence" and sequence_length > self.t:
            raise InputError(f"SEQUENCE_LENGTH {sequence_length} is longer than the {self.t} dates of the chips.")
        self.random_sequences = bool(random_sequences) and self.seq_len > 0
        self.fixed = fixed_dates(self.t, self.seq_len) if self.seq_len else list(range(self.t))

    def __len__(self) -> int:
        return len(self.records)

    def _read(self, rel: str) -> np.ndarray:
        path = self.folder / rel
        try:
            with rasterio.open(path) as ds:
                return ds.read()
        except rasterio.errors.RasterioIOError as e:
            raise ChipFolderError(f"Cannot read chip {path} ({e}); the chip folder is incomplete, export it again.") from e

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Normalised image and index target of chip ``i`` as numpy (no augmentation)."""
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        rec, m = self.records[i], self.manifest
        raw = self._read(rec.image)
        if m.kind == "sequence":
            if raw.shape[0] != self.t * self.c:
                raise ChipFolderError(f"Chip {rec.image} has {raw.shape[0]} bands, expected T*C = {self.t}*{self.c}.")
            raw = raw.reshape(self.t, self.c, *raw.shape[-2:])
            valid_t = np.stack([valid_mask(d, m.nodata) for d in raw])  # (T, H, W)
            image = self._indices(normalize(raw, self.mean, self.std, valid_t), raw, m.bands, valid_t)
            valid = valid_t.any(axis=0)
        else:
            if raw.shape[0] != self.c:
                raise ChipFolderError(f"Chip {rec.image} has {raw.shape[0]} bands, the manifest lists {self.c}.")
            valid = valid_mask(raw, m.nodata)
            image = self._indices(normalize(raw, self.mean, self.std, valid), raw, m.bands, valid)
            if m.kind == "pair":
                if not rec.image2:
                    raise ChipFolderError(f"Chip {rec.id} of a two-date folder has no images2 chip; export the chips again.")
                raw2 = self._read(rec.image2)
                valid2 = valid_mask(raw2, m.nodata)
                image2 = self._indices(normalize(raw2, self.mean2, self.std2, valid2), raw2, m.bands2 or m.bands, valid2)
                image = np.concatenate([image, image2], axis=0)
                valid &= valid2
        if rec.label:
            lab = self._read(rec.label)[0]
            target = self.lut[np.clip(lab, 0, 255).astype(np.uint8)]
        else:
            target = np.full(valid.shape, IGNORE_INDEX, dtype=np.uint8)
        target = np.where(valid, target, np.uint8(IGNORE_INDEX)).astype(np.uint8)
        image, target = self._pad(image, target)
        if self._cache is not None:
            self._cache[i] = (image, target)
        return image, target

    def _indices(self, norm: np.ndarray, raw: np.ndarray, names: Sequence[str], valid: np.ndarray) -> np.ndarray:
        """``norm`` ``(..., C, H, W)`` with the spectral index channels of ``raw`` appended (see :mod:`core.indices`)."""
        if not self.spectral_indices:
            return norm
        from ..preprocessing.indices import append_indices

        return append_indices(norm, raw, names, self.spectral_indices, valid)

    def dates_for_item(self) -> list[int]:
        """Date positions of the next item: random sorted L of T (training with random sequences) or the fixed ones."""
        if not self.random_sequences:
            return self.fixed
        return sorted(torch.randperm(self.t)[: self.seq_len].tolist())

    def _pad(self, image: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ts = int(self.manifest.tile_size) or max(target.shape)
        h, w = target.shape
        if (h, w) == (ts, ts) or h > ts or w > ts:
            return image, target
        pad = [(0, 0)] * (image.ndim - 2) + [(0, ts - h), (0, ts - w)]
        return np.pad(image, pad), np.pad(target, [(0, ts - h), (0, ts - w)], constant_values=IGNORE_INDEX)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, target = self.load(i)
        if self.seq_len:
            image = image[self.dates_for_item()]
        if self.augment:
            image, target = dihedral([image, target], int(torch.randint(8, ()).item()))
        return torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(target.astype(np.int64))

    def class_counts(self, num_classes: int) -> np.ndarray:
        """Labelled pixels per class index ``(K,) int64`` over these chips.

        Uses the manifest's per-chip ``class_counts`` when every chip has them, else reads the labels.
        """
        counts = np.zeros(num_classes, dtype=np.int64)
        if self.records and all(r.class_counts for r in self.records):
            for r in self.records:
                for v, n in r.class_counts.items():
                    k = self.lut[int(v)] if 0 <= int(v) < 256 else IGNORE_INDEX
                    if k != IGNORE_INDEX:
                        counts[k] += int(n)
            return counts
        for i in range(len(self)):
            t = self.load(i)[1]
            counts += np.bincount(t[t != IGNORE_INDEX].ravel(), minlength=num_classes)[:num_classes]
        return counts


def fixed_dates(t: int, length: int) -> list[int]:
    """``length`` evenly spaced date positions of ``t`` (first and last included), the fixed ordered sequence.

    ``fixed_dates(24, 6) == [0, 5, 9, 14, 18, 23]``; ``length`` 0 or >= t gives all dates.
    """
    if length <= 0 or length >= t:
        return list(range(t))
    return [int(v) for v in np.round(np.linspace(0, t - 1, length)).astype(int)]


# ------------------------------------------------------------------------------------- split
def _chip_bounds(chips: Sequence[ChipRecord]) -> np.ndarray:
    """``(N, 4)`` float64 ``[xmin, ymin, xmax, ymax]`` of each chip in CRS units (from its transform)."""
    out = np.empty((len(chips), 4))
    for i, r in enumerate(chips):
        a, b, c, d, e, f = r.transform[:6]
        w, h = r.window[2], r.window[3]
        xs = [c, c + a * w + b * h, c + a * w, c + b * h]
        ys = [f, f + d * w + e * h, f + d * w, f + e * h]
        out[i] = [min(xs), min(ys), max(xs), max(ys)]
    return out


def _class_matrix(chips: Sequence[ChipRecord]) -> np.ndarray | None:
    """``(N, V) float64`` labelled pixels per chip and class value (manifest counts); None if any chip lacks them."""
    if not chips or not all(r.class_counts for r in chips):
        return None
    values = sorted({int(v) for r in chips for v in r.class_counts})
    col = {v: j for j, v in enumerate(values)}
    out = np.zeros((len(chips), len(values)))
    for i, r in enumerate(chips):
        for v, n in r.class_counts.items():
            out[i, col[int(v)]] += n
    return out


def _fill(order: Sequence[str], blocks: dict[str, list[int]], val: set[int], target: float) -> set[int]:
    """Move whole blocks (in ``order``) to validation until ``target`` chips; keep one block for training."""
    val = set(val)
    for b in order[:-1]:
        if len(val) >= target:
            break
        val.update(blocks[b])
    if not val:
        val.update(blocks[order[0]])
    return val


def _mismatch(val: set[int], counts: np.ndarray) -> float:
    """Mean absolute log-ratio of the validation class shares to the whole folder's (+1 smoothed)."""
    v = counts[sorted(val)].sum(axis=0)
    total = counts.sum(axis=0)
    expected = total * v.sum() / max(total.sum(), 1.0)
    return float(np.mean(np.abs(np.log((v + 1.0) / (expected + 1.0)))))


def split_by_block(manifest: Manifest, val_fraction: float, seed: int = 42,
                   stratify: int = 64) -> tuple[list[int], list[int]]:
    """Split chips into training and validation by spatial block, without leakage.

    Chips whose ``block`` is ``"holdout"`` always go to validation. The other blocks are shuffled
    (``seed``) and whole blocks are moved to validation until ``val_fraction`` of the chips are
    there. With ``stratify`` > 1, that many shuffles are drawn and the one whose validation class
    distribution (per-chip ``class_counts`` of the manifest) is closest to the folder's is kept, so
    that rare classes are represented in validation as well as whole blocks allow (spatially
    stratified block selection). Training chips whose footprint overlaps any validation chip
    (overlapping tiles when the stride is smaller than the tile) are dropped, so no validation
    pixel is seen in training.

    Args:
        manifest: the chip folder's manifest.
        val_fraction: share of chips for validation, in (0, 1).
        seed: shuffling seed.
        stratify: candidate shuffles to choose from (1 = the first shuffle, no stratification; also
            when some chip has no ``class_counts``).

    Returns:
        ``(train, val)`` chip indices into ``manifest.chips``, each sorted.

    Raises:
        InputError: ``val_fraction`` outside (0, 1), fewer than 2 chips, fewer than 2 spatial blocks
            (and no hold-out block), or no training chip left after removing overlaps.
    """
    if not 0 < val_fraction < 1:
        raise InputError(f"The validation fraction must be between 0 and 1 (exclusive), got {val_fraction}.")
    chips = manifest.chips
    if len(chips) < 2:
        raise InputError(f"The chip folder has {len(chips)} chip(s); training needs at least 2 (one for validation). "
                         "Export more chips (a larger area, a smaller tile size or stride).")
    val = {i for i, r in enumerate(chips) if r.block == "holdout"}
    blocks: dict[str, list[int]] = {}
    for i, r in enumerate(chips):
        if i not in val:
            blocks.setdefault(r.block, []).append(i)
    if not val and len(blocks) < 2:
        raise InputError(
            f"All {len(chips)} chips lie in one spatial block, so no block can be held out for validation without "
            "leakage. Export the chips again with a smaller block size (or a larger area).")
    rng = np.random.default_rng(seed)
    target = val_fraction * len(chips)
    counts = _class_matrix(chips) if stratify > 1 else None
    best, best_cost = None, float("inf")
    for _ in range(max(1, stratify) if counts is not None else 1):
        order = sorted(blocks)
        rng.shuffle(order)
        cand = _fill(order, blocks, val, target)
        cost = _mismatch(cand, counts) if counts is not None else 0.0
        if cost < best_cost - 1e-12:
            best, best_cost = cand, cost
    val_idx = sorted(best)
    cand = [i for i in range(len(chips)) if i not in val]
    bt, bv = _chip_bounds([chips[i] for i in cand]), _chip_bounds([chips[i] for i in val_idx])
    overlap = ((bt[:, None, 0] < bv[None, :, 2]) & (bv[None, :, 0] < bt[:, None, 2])
               & (bt[:, None, 1] < bv[None, :, 3]) & (bv[None, :, 1] < bt[:, None, 3])).any(axis=1)
    train_idx = [i for i, o in zip(cand, overlap) if not o]
    if not train_idx:
        raise InputError(
            "No training chip is left after removing the chips that overlap validation chips. Lower the validation "
            "fraction, or export with a stride equal to the tile size and a larger area.")
    return train_idx, val_idx
