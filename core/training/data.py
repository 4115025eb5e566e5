"""torch Datasets over chip folders, and their data loaders.

Chips are read with rasterio through the folder's manifest (:func:`core.chips.folder.load_chip_folder`,
ours or ArcGIS-made), normalised with :func:`core.preprocessing.normalize.normalize` and the manifest
band statistics, nodata set to 0 in the image and to :data:`IGNORE_INDEX` in the target (incomplete
chips are kept and their nodata pixels are simply excluded from the loss, as in Sefrin, O., Riese, F. M.,
& Keller, S. (2021). Deep Learning for Land Cover Change Detection. Remote Sensing, 13(1), 78.
https://doi.org/10.3390/rs13010078), class values mapped to indices ``0..K-1`` of the class table.
Dihedral augmentation (flips and 90-degree rotations, after Kamdem De Teyou, G., Tarabalka, Y.,
Manighetti, I., Almar, R., & Tripodi, S. (2020). Deep Neural Networks for Automatic Extraction of
Features in Time Series Optical Satellite Images. Int. Arch. Photogramm. Remote Sens. Spatial Inf. Sci.,
XLIII-B2-2020, 1529-1535. https://doi.org/10.5194/isprs-archives-XLIII-B2-2020-1529-2020).
Several folders are merged into one training set by :mod:`core.training.folders`; the leakage-free
spatial-block split into training and validation chips is :func:`core.training.split.split_by_block`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, DistributedSampler, Subset

from ..chips.manifest import ChipRecord, Manifest
from ..classes import IGNORE_INDEX
from ..errors import BandMismatchError, ChipFolderError, InputError
from ..preprocessing.dihedral import N_TRANSFORMS, dihedral
from ..preprocessing.normalize import normalize, valid_mask
from . import distributed as dist_utils
from .config import TrainConfig


def class_lut(class_values: Sequence[int]) -> np.ndarray:
    """Lookup table ``(256,) uint8``: class value -> index in ``class_values``, anything else -> 255."""
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for i, v in enumerate(class_values):
        if 0 <= int(v) < 255:
            lut[int(v)] = i
    return lut


@dataclass(frozen=True)
class ChipInputs:
    """What a model takes from each chip of a :class:`ChipDataset`.

    Attributes:
        bands: the model's input bands, read by name from each chip (:func:`core.training.pretrained.match_bands`:
            ``B2`` = ``B02``, as Classify Pixels reads them from a raster); None: all of the manifest's bands in order.
            ``manifest.band_stats`` then holds one entry per band of ``bands``. Single-date and sequence chips.
        normalization: the kind of :func:`core.preprocessing.normalize.normalize` (``"standard"`` or
            ``"dynamicworld"``, whose two parameters are ``band_stats``' mean and std).
        spectral_indices: index names (``["NDVI", "NDWI"]``, :mod:`core.preprocessing.indices`) appended
            after each date's normalised bands, computed from the raw bands (not standardised).
        sequence_length: L dates per item of a sequence folder (0 or T = all T dates).
        random_sequences: with L < T, each item draws L distinct dates at random, sorted by time
            (Sefrin et al. 2021, the FCN+LSTM that "randomly builds a new sequence of images";
            torch's global RNG); otherwise the fixed, evenly spaced dates of :func:`fixed_dates`.
    """

    bands: Sequence[str] | None = None
    normalization: str = "standard"
    spectral_indices: Sequence[str] = ()
    sequence_length: int = 0
    random_sequences: bool = False


class ChipDataset(Dataset):
    """Chips of one folder as ``(image, target)`` tensors.

    Args:
        folder: the chip folder (paths in the manifest are relative to it).
        manifest: its manifest.
        indices: which chips (indices into ``manifest.chips``); all when None.
        class_values: the class table to map to (index k = ``class_values[k]``); default the manifest's.
        augment: random dihedral transform per item (uses torch's global RNG, so ``torch.manual_seed``
            makes it reproducible).
        inputs: what the model takes from a chip (:class:`ChipInputs`); None: all bands, standard
            normalisation, no indices, all dates.

    Decoded chips are kept in memory after their first read (chips are small; this keeps the data
    pipeline far below the model step's time).

    Items:
        ``image``: ``(C, H, W)`` float32 (single), ``(2C, H, W)`` (pair: date 1 bands then date 2),
        ``(T, C, H, W)`` (sequence, from the time-major T*C-band chip; ``(L, C, H, W)`` with
        ``sequence_length``), C the bands (of ``bands``) grown by the index channels; ``target``: ``(H, W)`` int64
        in ``0..K-1`` or 255 (ignored). H = W = ``manifest.tile_size`` (smaller edge chips are padded
        with nodata).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        manifest: Manifest,
        indices: Sequence[int] | None = None,
        class_values: Sequence[int] | None = None,
        augment: bool = False,
        inputs: ChipInputs | None = None,
    ) -> None:
        inputs = inputs or ChipInputs()
        bands, normalization, spectral_indices = inputs.bands, inputs.normalization, inputs.spectral_indices
        sequence_length, random_sequences = inputs.sequence_length, inputs.random_sequences
        self.folder = Path(folder)
        self.manifest = manifest
        self.records: list[ChipRecord] = [
            manifest.chips[i] for i in (indices if indices is not None else range(len(manifest.chips)))
        ]
        self.lut = class_lut(class_values if class_values is not None else manifest.class_values)
        self.augment = augment
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {}
        m = manifest
        self.raw_c = len(m.bands)  # bands of a chip file (per date)
        self.pick = _band_picks(folder, m, bands)
        self.names = list(bands) if self.pick is not None else list(m.bands)
        self.c = len(self.names)
        self.normalization = normalization
        self.t = m.num_time_steps
        self.mean = [b.mean for b in m.band_stats]
        self.std = [b.std for b in m.band_stats]
        self.mean2 = [b.mean for b in (m.band_stats2 or m.band_stats)]
        self.std2 = [b.std for b in (m.band_stats2 or m.band_stats)]
        if len(self.mean) != self.c:
            raise ChipFolderError(
                f"{folder}: manifest has {len(self.mean)} band statistics for {self.c} bands; export the chips again."
            )
        self.spectral_indices = list(spectral_indices)
        if self.spectral_indices:
            from ..preprocessing.indices import band_positions

            band_positions(self.spectral_indices, self.names)  # BandMismatchError naming the missing band
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
            raise ChipFolderError(
                f"Cannot read chip {path} ({e}); the chip folder is incomplete, export it again."
            ) from e

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Normalised image and index target of chip ``i`` as numpy (no augmentation)."""
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        rec, m = self.records[i], self.manifest
        raw = self._read(rec.image)
        if m.kind == "sequence":
            if raw.shape[0] != self.t * self.raw_c:
                raise ChipFolderError(
                    f"Chip {rec.image} has {raw.shape[0]} bands, expected T*C = {self.t}*{self.raw_c}."
                )
            raw = raw.reshape(self.t, self.raw_c, *raw.shape[-2:])
            raw = raw[:, self.pick] if self.pick is not None else raw
            valid_t = np.stack([valid_mask(d, m.nodata) for d in raw])  # (T, H, W)
            image = self._indices(self._normalize(raw, self.mean, self.std, valid_t), raw, self.names, valid_t)
            valid = valid_t.any(axis=0)
        else:
            if raw.shape[0] != self.raw_c:
                raise ChipFolderError(f"Chip {rec.image} has {raw.shape[0]} bands, the manifest lists {self.raw_c}.")
            raw = raw[self.pick] if self.pick is not None else raw
            valid = valid_mask(raw, m.nodata)
            image = self._indices(self._normalize(raw, self.mean, self.std, valid), raw, self.names, valid)
            if m.kind == "pair":
                if not rec.image2:
                    raise ChipFolderError(
                        f"Chip {rec.id} of a two-date folder has no images2 chip; export the chips again."
                    )
                raw2 = self._read(rec.image2)
                valid2 = valid_mask(raw2, m.nodata)
                image2 = self._indices(
                    self._normalize(raw2, self.mean2, self.std2, valid2), raw2, m.bands2 or m.bands, valid2
                )
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

    def _normalize(self, raw: np.ndarray, mean: list[float], std: list[float], valid: np.ndarray) -> np.ndarray:
        return normalize(raw, mean, std, valid, self.normalization)  # type: ignore[arg-type]

    def _indices(self, norm: np.ndarray, raw: np.ndarray, names: Sequence[str], valid: np.ndarray) -> np.ndarray:
        """``norm`` ``(..., C, H, W)`` with the spectral index channels of ``raw`` appended (see :mod:`core.preprocessing.indices`)."""
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
            k = int(torch.randint(N_TRANSFORMS, ()).item())
            image, target = (np.ascontiguousarray(dihedral(a, k)) for a in (image, target))
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


def _band_picks(folder: str | os.PathLike, m: Manifest, bands: Sequence[str] | None) -> list[int] | None:
    """0-based chip band of each of ``bands`` (None: all the chip's bands in order).

    Raises:
        InputError: a selection on two-date chips; BandMismatchError: a band the chips lack.
    """
    if bands is None or list(bands) == list(m.bands):
        return None
    if m.kind == "pair":
        raise InputError("Bands are selected by name from single-date or time-series chips, not two-date chips.")
    from .pretrained import match_bands

    pos = match_bands(list(bands), list(m.bands))
    missing = [b for b, p in zip(bands, pos) if p is None]
    if missing:
        raise BandMismatchError(f"{folder}: the chips lack the bands {missing} of {list(m.bands)}; export them alike.")
    return [int(p) for p in pos]  # type: ignore[arg-type]


def fixed_dates(t: int, length: int) -> list[int]:
    """``length`` evenly spaced date positions of ``t`` (first and last included), the fixed ordered sequence.

    ``fixed_dates(24, 6) == [0, 5, 9, 14, 18, 23]``; ``length`` 0 or >= t gives all dates.
    """
    if length <= 0 or length >= t:
        return list(range(t))
    return [int(v) for v in np.round(np.linspace(0, t - 1, length)).astype(int)]


# ----------------------------------------------------------------------------------- loaders
def make_loader(
    ds: ConcatDataset,
    batch: int,
    shuffle: bool,
    config: TrainConfig,
    pin_memory: bool,
    ctx: dist_utils.DistContext | None = None,
) -> DataLoader:
    """Training (``shuffle``) or validation loader; under DDP each rank gets its share of the chips.

    Training under DDP: a :class:`DistributedSampler` (shuffled with ``config.seed`` and the epoch,
    padded so that every rank runs the same number of steps). Validation under DDP: disjoint shards
    (:func:`core.training.distributed.shard`), so the all-reduced confusion matrix counts each pixel once.
    ``pin_memory``: page-locked batches, for a fast copy to a CUDA device.
    """
    g = torch.Generator()
    g.manual_seed(config.seed)
    sampler = None
    if ctx is not None and ctx.enabled:
        if shuffle:
            sampler = DistributedSampler(
                ds, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=config.seed, drop_last=False
            )
        else:
            ds = Subset(ds, dist_utils.shard(len(ds), ctx))
    n = len(sampler) if sampler is not None else len(ds)
    return DataLoader(
        ds,
        batch_size=batch,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=config.num_workers,
        generator=g,
        pin_memory=pin_memory,
        drop_last=shuffle and n > batch,
        persistent_workers=config.num_workers > 0,
    )


def base_datasets(loader: DataLoader) -> list[ChipDataset]:
    """The :class:`ChipDataset` s behind a loader (through a DDP shard ``Subset`` and ``ConcatDataset``)."""
    ds = loader.dataset
    while isinstance(ds, Subset):
        ds = ds.dataset
    return list(getattr(ds, "datasets", [ds]))


def loader_chip_folders(loader: DataLoader) -> list[Path]:
    """The chip folders behind a loader's (concatenated) dataset."""
    return [d.folder for d in base_datasets(loader)]
