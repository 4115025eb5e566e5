"""Several chip folders as one training set: cross-checks, merged class table, pooled statistics, datasets.

:func:`load_folders` reads the folders (ours or ArcGIS-made, :func:`core.chips.folder.load_chip_folder`) and
checks they are alike and fit the architecture; :func:`build_datasets` splits each folder by spatial
block (:func:`core.training.split.split_by_block`) into :class:`core.training.data.ChipDataset` s that
share the pooled normalisation.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import ConcatDataset

from ...models import PAIR_MODELS, SEQUENCE_MODELS
from ..chips.folder import load_chip_folder
from ..chips.manifest import Manifest
from ..chips.stats import pooled_stats
from ..classes import ClassInfo
from ..errors import BandMismatchError, ChipFolderError, InputError
from ..layout import InputLayout
from ..preprocessing.indices import parse_indices
from .config import TrainConfig
from .data import ChipDataset, ChipInputs, fixed_dates
from .split import split_by_block


@dataclass
class TrainingSet:
    """The chip folders of a run as one training set.

    Attributes:
        manifest: the merged manifest (:func:`load_folders`), normalisation as the encoder schedule set it.
        classes: the model's classes, output channel k predicting ``classes[k].value``.
        indices: spectral index channels appended to each date's bands (:mod:`core.preprocessing.indices`).
        train, val: the datasets of :func:`build_datasets`.
    """

    manifest: Manifest
    classes: list[ClassInfo]
    indices: list[str]
    train: ConcatDataset
    val: ConcatDataset

    @property
    def in_channels(self) -> int:
        """Input channels C of one time step: bands and indices, of both dates for a pair."""
        return InputLayout.of_manifest(self.manifest, len(self.indices)).in_channels


def load_folders(
    chip_folders: Sequence[str | os.PathLike], architecture: str
) -> tuple[list[tuple[Path, Manifest]], Manifest]:
    """Read and cross-check chip folders; return them and a merged manifest (pooled statistics).

    Classes without a single labelled pixel in any folder are left out of the merged class table
    (they cannot be learnt), unless no folder counts pixels (ArcGIS exports may not).

    Raises:
        ChipFolderError: no folder, a folder that is not a chip folder, folders of different kinds,
            class tables or time steps, no chips.
        BandMismatchError: different band counts or sensors.
        InputError: the architecture does not fit the chips (sequence vs single vs pair).
    """
    if not chip_folders:
        raise ChipFolderError("No chip folder given; export chips with Export Training Tiles first.")
    loaded = [(Path(f), load_chip_folder(f)) for f in chip_folders]
    _check_alike(loaded)
    f0, m0 = loaded[0]
    if not m0.classes:
        raise ChipFolderError(f"{f0} has an empty class table; export the chips with labels.")
    if not any(m.chips for _, m in loaded):
        raise ChipFolderError("The chip folders hold no chips; export again with a lower minimum labelled fraction.")
    _check_architecture(m0, architecture)
    if any((m.sources.get("sensor_bands") or {}) != (m0.sources.get("sensor_bands") or {}) for _, m in loaded[1:]):
        raise BandMismatchError("The chip folders stack different sensors (sources.sensor_bands); export them alike.")
    merged = dataclasses.replace(
        m0,
        band_stats=pooled_stats([m.band_stats for _, m in loaded]),
        band_stats2=pooled_stats([m.band_stats2 for _, m in loaded]) if m0.band_stats2 else [],
        chips=[c for _, m in loaded for c in m.chips],
        classes=_labelled_classes(loaded),
    )
    return loaded, merged


def _check_alike(loaded: list[tuple[Path, Manifest]]) -> None:
    """Every folder has the first one's kind, band count, class values and time steps."""
    f0, m0 = loaded[0]
    for f, m in loaded[1:]:
        if m.kind != m0.kind:
            raise ChipFolderError(
                f"{f} holds {m.kind} chips but {f0} holds {m0.kind} chips; train on one kind at a time."
            )
        if len(m.bands) != len(m0.bands):
            raise BandMismatchError(
                f"{f} has {len(m.bands)} bands but {f0} has {len(m0.bands)}; export all chip folders "
                "from rasters with the same bands."
            )
        if m.class_values != m0.class_values:
            raise ChipFolderError(
                f"{f} has classes {m.class_values} but {f0} has {m0.class_values}; export all chip "
                "folders with the same class table."
            )
        if m.num_time_steps != m0.num_time_steps:
            raise ChipFolderError(f"{f} has {m.num_time_steps} time steps but {f0} has {m0.num_time_steps}.")


def _check_architecture(m0: Manifest, architecture: str) -> None:
    """The architecture takes this kind of chips (time series, two dates, several sensors)."""
    seq = m0.kind == "sequence"
    if seq != (architecture in SEQUENCE_MODELS):
        need = (
            " or ".join(sorted(SEQUENCE_MODELS))
            if seq
            else "unet, deeplabv3plus, or for two dates " + ", ".join(sorted(PAIR_MODELS))
        )
        raise InputError(
            f"Architecture {architecture} does not fit {m0.kind} chips "
            f"({m0.num_time_steps} time step(s)); use {need}, or export the chips as "
            f"{'single-date' if seq else 'a time series'}."
        )
    if architecture in PAIR_MODELS and m0.kind != "pair":
        raise InputError(
            f"{architecture} needs two-date chips (images + images2); export them with a second date, or choose unet."
        )
    if architecture == "two_branch_unet" and (m0.kind != "single" or len(m0.sources.get("sensor_bands") or {}) < 2):
        raise InputError(
            "two_branch_unet needs multi-sensor chips: export them with ADDITIONAL_SENSORS (one encoder "
            "per sensor), or choose unet for early fusion."
        )


def _labelled_classes(loaded: list[tuple[Path, Manifest]]) -> list[ClassInfo]:
    """The first folder's classes with a labelled pixel in some folder (a legend entry absent from this
    area cannot be learnt); all of them when no folder counts pixels (ArcGIS exports may not)."""
    m0 = loaded[0][1]
    totals = {
        c.value: sum(cc.pixel_count for _, m in loaded for cc in m.classes if cc.value == c.value) for c in m0.classes
    }
    return [c for c in m0.classes if totals[c.value] > 0] if any(totals.values()) else list(m0.classes)


def build_datasets(
    loaded: list[tuple[Path, Manifest]], merged: Manifest, config: TrainConfig
) -> tuple[ConcatDataset, ConcatDataset]:
    """Training and validation datasets (spatial-block split per folder, pooled normalisation).

    Spectral indices and (random) sequences of ``config`` are applied; validation always uses the
    fixed ordered sequence.
    """
    train, val = [], []
    for folder, m in loaded:
        m = dataclasses.replace(m, band_stats=merged.band_stats, band_stats2=merged.band_stats2)
        ti, vi = split_by_block(m, config.val_fraction, config.seed)
        # the model's bands (chosen by name) and normalisation kind, when the architecture's plan set them
        inputs = ChipInputs(
            bands=merged.sources.get("input_bands"),
            normalization=merged.sources.get("normalization", "standard"),
            spectral_indices=parse_indices(config.indices),
            sequence_length=config.sequence_length,
        )
        random = dataclasses.replace(inputs, random_sequences=config.random_sequences)
        train.append(ChipDataset(folder, m, ti, merged.class_values, config.augment, random))
        val.append(ChipDataset(folder, m, vi, merged.class_values, False, inputs))
    return ConcatDataset(train), ConcatDataset(val)


def model_dates(merged: Manifest, config: TrainConfig) -> list[str] | None:
    """The dates a sequence model takes at inference: the fixed subset with ``sequence_length``, else all (None)."""
    if merged.kind != "sequence" or not 0 < config.sequence_length < merged.num_time_steps:
        return None
    return [merged.time_steps[i] for i in fixed_dates(merged.num_time_steps, config.sequence_length)]
