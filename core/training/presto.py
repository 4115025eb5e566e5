"""Presto in Train Model: the weights file, Presto's units as the normalisation, months and location, the schedule.

Architecture ``presto`` (:class:`models.presto.PrestoClassifier`) trains on sequence chips. What this module
adds to a run (:class:`core.training.trainer.Trainer` calls it):

- **Weights** (:func:`presto_weights`): ``ENCODER_WEIGHTS`` empty or ``presto`` takes the authors' published
  ``default_model.pt`` (github.com/nasaharvest/presto at a pinned commit, SHA-256 checked) from
  ``<weights folder>/presto/`` (the folder :func:`core.training.weights_catalog.cache_dir` names:
  ``$DLC_WEIGHTS_DIR`` or the user cache), downloaded there when missing; ``none`` trains from random
  weights (the control); a path names another Presto state dict.
- **Normalisation** (:func:`presto_normalisation`): the model takes Presto's units, so the run's band
  mean/std become Presto's scaling for the bands Presto knows (Sentinel-2 ``(x - 0) / 10000`` for digital
  numbers, ``/ 1`` for reflectances; Sentinel-1 dB ``(x + 25) / 25``; :data:`models.presto.PRESTO_SCALING`).
  The model card records them, so Classify Pixels feeds the model exactly what it trained on; bands
  Presto does not use keep the data's statistics.
- **Months and location** (:func:`presto_params`): the month of each model date (from the chip manifest's
  ISO dates) and the latitude/longitude of the chips' centre, the model's constructor arguments (recorded
  in the card and checkpoint).
- **Schedule** (:class:`PrestoEncoderSchedule`): Train Model's frozen-then-unfrozen fine-tuning
  (:class:`core.training.encoder_schedule.EncoderSchedule`: the head alone for ``freeze_epochs``, then the encoder
  too at ``lr * encoder_lr_factor``).

Tseng, G., Cartuyvels, R., Zvonkov, I., Purohit, M., Rolnick, D., & Kerner, H. (2023). Lightweight,
Pre-trained Transformers for Remote Sensing Timeseries. arXiv:2304.14065.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import torch

from ...models import presto as mp
from ..chips.manifest import Manifest
from ..errors import InputError, ModelFileError
from ..feedback import Feedback
from ..provenance import file_sha256
from .config import TrainConfig
from .encoder_schedule import EncoderSchedule, channel_names
from .folders import model_dates
from .pretrained import EncoderWeights
from .weights_catalog import CATALOG, WeightsEntry, cache_dir, fetch_weights

#: The authors' weights at the commit the offline copy was taken from.
URL = "https://raw.githubusercontent.com/nasaharvest/presto/13173d028f035abcbcc3b13829314323a5c15d02/data/default_model.pt"
SHA256 = "559c9d76f525bdf2dd3774da8b1e7f1510769b73baacac12e9e4d8d5c67fbe65"
#: Where the file lies under the weights folder.
SUBFOLDER = "presto"
LICENCE = "MIT"
CITATION = (
    "Tseng, G., Cartuyvels, R., Zvonkov, I., Purohit, M., Rolnick, D., & Kerner, H. (2023). Lightweight, "
    "Pre-trained Transformers for Remote Sensing Timeseries. arXiv:2304.14065"
)
_S2 = mp.PRESTO_BANDS[2:12]
#: The catalogue entry of the weights (Sentinel-2 bands and their scaling in digital numbers); the catalogue's
#: own ``presto`` entry (:data:`core.training.weights_catalog.CATALOG`) is used when it has one.
ENTRY = WeightsEntry("presto", URL, SHA256, "presto", _S2, (0.0,) * len(_S2), (10000.0,) * len(_S2), LICENCE, CITATION)


def presto_weights(spec: str, feedback: Feedback | None = None) -> EncoderWeights | None:
    """The Presto weights ``spec`` names (``""``/``presto``: the authors' file; ``none``: None; else a path).

    Raises:
        ModelFileError: the authors' file is neither in the weights folder nor downloadable (the message names
            the folder, ``DLC_WEIGHTS_DIR`` and the URL), or its SHA-256 differs.
        InputError: ``spec`` is neither ``presto``, ``none`` nor an existing file.
    """
    spec = (spec or "").strip()
    if spec.lower() == "none":
        return None
    if spec in ("", "presto"):
        folder = cache_dir() / SUBFOLDER
        try:
            path, digest = fetch_weights(CATALOG.get("presto", ENTRY), feedback, folder)
        except ModelFileError as e:
            if (folder / "default_model.pt").is_file():
                raise
            raise ModelFileError(
                f"Presto's weights are not in {folder} and could not be downloaded ({e}). Download {URL} and put it "
                f"there as default_model.pt, or set DLC_WEIGHTS_DIR to a folder holding presto/default_model.pt."
            ) from e
        name = "presto"
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise InputError(f"Encoder weights {spec!r} for presto: use presto, none or an existing Presto .pt file.")
        digest, name = file_sha256(path), path.stem
    return EncoderWeights(name, path, digest, "presto", list(_S2), None, None, LICENCE, CITATION)


def presto_normalisation(manifest: Manifest, feedback: Feedback | None = None) -> tuple[Manifest, str]:
    """``manifest`` with Presto's scaling as the mean/std of the bands Presto uses, and a note of what was used.

    Sentinel-2 values count as reflectances (0-1) when the median mean of the matched bands is below 10.

    Raises:
        InputError: no complete Sentinel-2 band group (bands not named B02, B03, B04...), or VV/VH bands
            that look linear (mean above 0) where Presto takes dB.
    """
    bands, stats = list(manifest.bands), list(manifest.band_stats)
    slots = mp.band_slots(bands)
    s2 = sorted(stats[i].mean for p, i in slots.items() if p.startswith("B"))
    if not s2:
        raise InputError(
            f"Presto found no Sentinel-2 band among {bands}; it matches bands by name (B02, B03, B04, ... B8A, B11, "
            "B12): export the chips from rasters whose band descriptions name them."
        )
    linear = [p for p, i in slots.items() if p in ("VV", "VH") and stats[i].mean > 0]
    if linear:
        raise InputError(f"Presto takes Sentinel-1 {'/'.join(linear)} in dB; the chips look linear: use 10*log10(x).")
    reflectance = s2[len(s2) // 2] < 10
    scaling = mp.presto_scaling(bands, reflectance)
    new = [dataclasses.replace(b, mean=s[0], std=s[1]) if s else b for b, s in zip(stats, scaling)]
    used = [b for b, s in zip(bands, scaling) if s]
    unit = "reflectance, x / 1" if reflectance else "digital numbers, x / 10000"
    note = f"Presto's scaling for {', '.join(used)} (Sentinel-2 in {unit}); the data's statistics for the rest"
    return dataclasses.replace(manifest, band_stats=new), note


def date_months(dates: list[str]) -> list[int]:
    """Month 0-11 of each ISO date (``"2015-07-11"`` -> 6).

    Raises:
        InputError: a date that is not ``YYYY-MM...``.
    """
    out = []
    for d in dates:
        m = re.match(r"\s*\d{4}-?(\d{2})", str(d))
        if not m or not 1 <= int(m.group(1)) <= 12:
            raise InputError(
                f"Presto needs the date of every time step; the chips have {d!r}. Export the chips with dated "
                "rasters (a date in each file name, or the dates given)."
            )
        out.append(int(m.group(1)) - 1)
    return out


def chips_latlon(manifest: Manifest) -> list[float] | None:
    """``[latitude, longitude]`` in degrees of the centre of the chips, or None without a CRS."""
    if not manifest.crs_wkt or not manifest.chips:
        return None
    from rasterio.warp import transform

    xs = [c.transform[2] + c.transform[0] * c.window[2] / 2 for c in manifest.chips]
    ys = [c.transform[5] + c.transform[4] * c.window[3] / 2 for c in manifest.chips]
    try:
        lon, lat = transform(manifest.crs_wkt, "EPSG:4326", [sum(xs) / len(xs)], [sum(ys) / len(ys)])
    except Exception:  # a CRS PROJ cannot transform: Presto then gets no location (0, 0)
        return None
    return [round(float(lat[0]), 6), round(float(lon[0]), 6)]


def presto_params(manifest: Manifest, config: TrainConfig, indices: list[str]) -> dict[str, Any]:
    """Constructor arguments of :class:`models.presto.PrestoClassifier` for a run: ``bands`` (channel names),
    ``months`` (of the model's dates) and ``latlon``, then ``config.arch_params``.

    Raises:
        InputError: random sequences (Presto takes the months of fixed dates), more than 24 dates, undated chips.
    """
    if config.random_sequences:
        raise InputError("Presto takes the months of fixed dates: switch random sequences off.")
    dates = model_dates(manifest, config) or list(manifest.time_steps)
    if len(dates) > mp.MAX_STEPS:
        raise InputError(f"Presto takes at most {mp.MAX_STEPS} dates; set a sequence length of {mp.MAX_STEPS} or less.")
    params = {"bands": channel_names(manifest, indices), "months": date_months(dates), "latlon": chips_latlon(manifest)}
    return {**params, **config.arch_params}


class PrestoEncoderSchedule(EncoderSchedule):
    """Fine-tuning from Presto's weights: :class:`EncoderSchedule`'s freeze/unfreeze, Presto's loading."""

    @classmethod
    def prepare(
        cls, config: TrainConfig, manifest: Manifest, indices: list[str], feedback: Feedback
    ) -> tuple[PrestoEncoderSchedule | None, Manifest]:
        """Resolve the weights (:func:`presto_weights`) and give ``manifest`` Presto's units (always: the model
        takes them with random weights too); ``(None, manifest)`` for ``none``."""
        manifest, note = presto_normalisation(manifest, feedback)
        feedback.info(f"Normalisation: {note}.")
        weights = presto_weights(config.encoder_weights, feedback)
        if weights is None:
            feedback.info("Presto from random weights (encoder weights 'none').")
            return None, manifest
        return cls(weights, config, channel_names(manifest, indices), note), manifest

    def load(self, model: torch.nn.Module, feedback: Feedback, resumed: bool = False) -> None:
        """Load the weights into ``model.encoder`` (not when resuming: the checkpoint has them)."""
        if resumed:
            return
        try:
            mp.load_presto_encoder(model.encoder, self.weights.path)
        except (ValueError, FileNotFoundError) as e:
            raise ModelFileError(f"Cannot load Presto's weights: {e}") from e
        used = [self.channels[i] for i in model.used]
        self.report = {"matched": [[b, mp.presto_band(b)] for b in used], "initialised": [], "groups": model.groups}
        feedback.info(
            f"Encoder weights {self.weights.name} (SHA-256 {self.weights.sha256[:12]}..., {LICENCE}): bands "
            f"{', '.join(used)} matched by name; groups {', '.join(model.groups)}; the others masked."
        )

    def info(self) -> dict[str, Any]:
        """What the model card's ``training["encoder_weights"]`` records (with the groups used and the URL)."""
        url = URL if self.weights.name == "presto" else None
        return {**super().info(), "url": url, "groups": self.report.get("groups"), "extra_band_init": None}
