"""Fine-tuning from Dynamic World in Train Model: the weights, the band selection, the authors' normalisation.

Architecture ``dynamicworld`` (:class:`models.dynamicworld.DynamicWorldClassifier`: Dynamic World's body under a
new 1x1 head for the user's classes) trains on single-date Sentinel-2 L1C chips. What this module adds to a run
(:class:`core.training.trainer.Trainer` calls :meth:`DynamicWorldEncoderSchedule.prepare`):

- **Weights** (:func:`dynamicworld_weights`): ``ENCODER_WEIGHTS`` empty or ``dynamicworld`` takes the authors'
  checkpoint (:func:`core.training.dynamicworld.checkpoint_folder`: ``<weights folder>/dynamicworld/forward/
  variables/``, SHA-256 checked, downloaded there when missing); ``none`` trains the same network from random
  weights (the control); a folder names another checkpoint of the same network.
- **Bands** (:func:`select_dynamicworld_bands`): the model takes Dynamic World's 9 bands
  (:data:`models.dynamicworld.BANDS`) in its order, found by name among the chips' bands (``B2``/``B02``
  alike, :func:`core.training.pretrained.canonical_band`), whatever their order; the chips may hold all 13 L1C
  bands. The run's manifest lists only those 9 (``sources["input_bands"]``: the chip datasets read them by
  name), so the model card does too and Classify Pixels picks the same bands by name from any raster.
- **Normalisation**: the authors' formula (kind ``dynamicworld``, :func:`core.preprocessing.normalize.dynamicworld`)
  with their per-band parameters as the manifest's (and card's) mean/std, with random weights too.
- **Schedule**: Train Model's frozen-then-unfrozen fine-tuning (:class:`core.training.encoder_schedule.EncoderSchedule`:
  the head alone for ``freeze_epochs``, then the body too at ``lr * encoder_lr_factor``), the authors' batch
  norm statistics kept for the whole run (small land-cover chip sets give noisy batch statistics).

Brown, C. F., et al. (2022). Dynamic World, Near real-time global 10 m land use land cover mapping.
Scientific Data, 9, 251. https://doi.org/10.1038/s41597-022-01307-4 (weights: Apache-2.0).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ...models import dynamicworld as dw
from ...models.tf_bundle import TensorBundleError
from ..chips.manifest import Manifest
from ..errors import InputError, ModelFileError
from ..feedback import Feedback
from ..provenance import file_sha256
from ..raster.grid import undescribed
from .config import TrainConfig
from .dynamicworld import CITATION, LICENCE, UPSTREAM, checkpoint_folder
from .encoder_schedule import EncoderSchedule
from .pretrained import EncoderWeights, canonical_band, match_bands

#: The normalisation kind of the model card (:data:`core.preprocessing.normalize.KINDS`).
NORMALIZATION = "dynamicworld"
_DATA = "variables.data-00000-of-00001"


def select_dynamicworld_bands(bands: Sequence[str]) -> list[int]:
    """0-based position in ``bands`` of each of Dynamic World's 9 bands, in the model's order.

    Matching is by name (:func:`core.training.pretrained.canonical_band`: ``B2`` = ``B02``, any case), as Classify
    Pixels matches a model card's bands. Rasters without band descriptions (``B1``, ``B2``... in GDAL) say
    nothing about their bands and are refused.

    Raises:
        InputError: bands missing (the message names them), unnamed or named twice.
    """
    names = [str(b) for b in bands]
    keys = [canonical_band(b) for b in names]
    unnamed = undescribed(names)
    pos = match_bands(list(dw.BANDS), names)
    missing = [b for b, p in zip(dw.BANDS, pos) if p is None]
    if not (unnamed or missing or len(set(keys)) < len(keys)):
        return [int(p) for p in pos]  # type: ignore[arg-type]
    why = f"lack {', '.join(missing)}" if missing and not unnamed else "do not name them unambiguously"
    raise InputError(
        f"Dynamic World takes the Sentinel-2 L1C bands {', '.join(dw.BANDS)}; the chips' bands {names} {why}. "
        "Export the chips from a Sentinel-2 L1C raster whose band descriptions name its bands (B02 or B2, ...; "
        "all 13 bands or these 9)."
    )


def dynamicworld_manifest(manifest: Manifest) -> tuple[Manifest, str]:
    """``manifest`` as the model sees it: the 9 bands selected by name, the authors' parameters as mean/std.

    Returns:
        The manifest (``bands``: the chips' names of the 9 bands in Dynamic World's order; ``band_stats``: the
        authors' ``(p0, p1)`` as mean/std; ``sources["input_bands"]`` and ``sources["normalization"]``) and a note.

    Raises:
        InputError: chips that are not single-date, missing bands, or values that look like reflectances (0-1)
            where Dynamic World takes L1C digital numbers (reflectance x 10000).
    """
    if manifest.kind != "single":
        raise InputError(
            f"Dynamic World classifies single-date Sentinel-2 scenes; these chips are {manifest.kind} chips. "
            "Export the chips from one date, or choose another architecture."
        )
    pos = select_dynamicworld_bands(manifest.bands)
    names = [manifest.bands[i] for i in pos]
    means = sorted(manifest.band_stats[i].mean for i in pos)
    if means and means[len(means) // 2] < 10:
        raise InputError(
            "Dynamic World takes Sentinel-2 L1C digital numbers (reflectance x 10000); the chips' band means "
            f"(median {means[len(means) // 2]:.3g}) look like reflectances (0-1): scale the raster by 10000."
        )
    stats = [dataclasses.replace(manifest.band_stats[i], mean=p0, std=p1) for i, (p0, p1) in zip(pos, dw.NORM_PARAMS)]
    sources = {**manifest.sources, "input_bands": names, "normalization": NORMALIZATION}
    out = dataclasses.replace(manifest, bands=names, band_stats=stats, sources=sources)
    return out, f"Dynamic World's own (Brown et al. 2022) on bands {', '.join(names)} (L1C digital numbers)"


def dynamicworld_weights(spec: str, feedback: Feedback | None = None) -> tuple[EncoderWeights, dict] | None:
    """The checkpoint ``spec`` names and ``{file: SHA-256}``: ``""``/``dynamicworld`` the authors', ``none``: None,
    else a folder holding ``variables.index`` and ``variables.data-00000-of-00001`` (or their prefix).

    Raises:
        ModelFileError: the authors' files are missing and cannot be downloaded (the message says where to put
            them), or their SHA-256 differs.
        InputError: ``spec`` is neither ``dynamicworld``, ``none`` nor a checkpoint folder.
    """
    spec = (spec or "").strip()
    if spec.lower() == "none":
        return None
    if spec.lower() in ("", "dynamicworld"):
        folder, digests = checkpoint_folder(feedback)
        name = "dynamicworld"
    else:
        folder = Path(spec).expanduser()
        folder = folder if folder.is_dir() else folder.parent
        files = [folder / "variables.index", folder / _DATA]
        if not all(f.is_file() for f in files):
            raise InputError(
                f"Encoder weights {spec!r} for dynamicworld: use dynamicworld, none or a folder holding a Dynamic "
                f"World checkpoint (variables.index and {_DATA})."
            )
        digests, name = {f.name: file_sha256(f) for f in files}, folder.name
    p0, p1 = ([p[k] for p in dw.NORM_PARAMS] for k in (0, 1))
    weights = EncoderWeights(name, folder, digests[_DATA], "dynamicworld", list(dw.BANDS), p0, p1, LICENCE, CITATION)
    return weights, digests


class DynamicWorldEncoderSchedule(EncoderSchedule):
    """Fine-tuning from Dynamic World's weights: :class:`EncoderSchedule`'s schedule, the authors' checkpoint.

    Args:
        weights, config, channels, norm_note: as :class:`EncoderSchedule`.
        digests: ``{checkpoint file name: SHA-256}``, recorded in the card.
    """

    def __init__(
        self, weights: EncoderWeights, config: TrainConfig, channels: list[str], norm_note: str, digests: dict
    ) -> None:
        super().__init__(weights, config, channels, norm_note)
        self.digests = dict(digests)

    @classmethod
    def prepare(
        cls, config: TrainConfig, manifest: Manifest, indices: list[str], feedback: Feedback
    ) -> tuple[DynamicWorldEncoderSchedule | None, Manifest]:
        """Select the 9 bands and set the authors' normalisation (:func:`dynamicworld_manifest`, with random
        weights too), then resolve the weights (:func:`dynamicworld_weights`); ``(None, manifest)`` for ``none``.

        Raises:
            InputError: spectral indices asked for (the network takes its 9 bands only), see
                :func:`dynamicworld_manifest` and :func:`dynamicworld_weights`.
            ModelFileError: see :func:`dynamicworld_weights`.
        """
        if indices:
            raise InputError("Dynamic World takes its 9 Sentinel-2 bands only: leave the spectral indices empty.")
        manifest, note = dynamicworld_manifest(manifest)
        feedback.info(f"Bands and normalisation: {note}.")
        resolved = dynamicworld_weights(config.encoder_weights, feedback)
        if resolved is None:
            feedback.info("Dynamic World from random weights (encoder weights 'none').")
            return None, manifest
        return cls(resolved[0], config, list(manifest.bands), note, resolved[1]), manifest

    def load(self, model: torch.nn.Module, feedback: Feedback, resumed: bool = False) -> None:
        """Load the checkpoint into ``model.encoder`` (not when resuming: the run's checkpoint has the weights).

        Raises:
            ModelFileError: a damaged checkpoint, or not Dynamic World's.
        """
        if resumed:
            return
        try:
            dw.load_checkpoint(model.encoder, self.weights.path, head=False)
        except (TensorBundleError, ValueError, KeyError) as e:
            raise ModelFileError(
                f"The Dynamic World checkpoint in {self.weights.path} cannot be read ({e}). Delete its files to "
                "download them again."
            ) from e
        self.report = {"matched": [[b, m] for b, m in zip(self.channels, dw.BANDS)], "initialised": []}
        feedback.info(
            f"Encoder weights {self.weights.name} (SHA-256 {self.weights.sha256[:12]}..., {LICENCE}): bands "
            f"{', '.join(self.channels)} matched by name; a new head for the classes."
        )

    def at_epoch(self, model: torch.nn.Module, epoch: int, batch_size: int, feedback: Feedback) -> bool:
        """:meth:`EncoderSchedule.at_epoch` with the authors' batch norm statistics kept after unfreezing too."""
        return super().at_epoch(model, epoch, 0, feedback)  # batch size 0: below SMALL_BATCH, statistics fixed

    def info(self) -> dict[str, Any]:
        """What the model card's ``training["encoder_weights"]`` records: URL, SHA-256 of both files, licence,
        citation, matched bands, normalisation, schedule."""
        url = UPSTREAM + "variables/" if self.weights.name == "dynamicworld" else None
        return {
            **super().info(),
            "url": url,
            "files": dict(self.digests),
            "extra_band_init": None,
            "batch_norm": "the authors' statistics, fixed",
        }
