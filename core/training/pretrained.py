"""Pre-trained encoder weights in a model: resolve, match bands by name, normalise, load, export.

``ENCODER_WEIGHTS`` is ``none``, a name of :data:`core.training.weights_catalog.CATALOG`, or a local
``.pth`` state dict in torchvision/timm ResNet names (optionally with a ``.json`` sidecar naming its
bands, normalisation, licence and citation: what :func:`save_encoder_weights` writes). Files are read
with ``torch.load(weights_only=True)`` only.

Band matching (after TerraTorch's matching of pre-trained patch-embedding weights to the user's bands
by name; Gomes, C., et al. (2025). TerraTorch: The Geospatial Foundation Models Toolkit. arXiv:2503.20563):
the first convolution's filters are taken, per input channel, from the pre-trained channel of the same
band (Sentinel-2 names ``B01``...``B12``, ``B8A``; ``B1`` = ``B01``; red/green/blue = B04/B03/B02), in the
input's order. Channels the weights never saw (indices, SAR, other sensors) are initialised by one of
the schemes of ArcGIS Pro's ``weight_init_scheme`` (Train Deep Learning Model): ``random`` (left as
initialised), ``mean`` (mean of the pre-trained filters of the matched bands, or of all when none
match) or ``red`` (a copy of the red-band filter); with copies the whole first-layer kernel is scaled
by ``matched / channels`` so its response keeps its magnitude (timm's ``adapt_input_conv`` does the same).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...models.resnet import encoder_state_dict
from ..errors import InputError, ModelFileError
from ..feedback import Feedback
from ..provenance import file_sha256
from ..raster.io import atomic_output
from .config import CHOICES
from .weights_catalog import CATALOG, RGB, WeightsEntry, fetch_weights

#: Ways to initialise first-layer filters of channels the weights have no band for (ArcGIS's schemes).
EXTRA_BAND_INIT = CHOICES["extra_band_init"]

_ALIASES = {"RED": "B04", "GREEN": "B03", "BLUE": "B02", "NIR": "B08"}


def canonical_band(name: str) -> str:
    """A band name for matching: ``"b1"``, ``"B01"``, ``"band_1"`` -> ``"B01"``; ``"b8a"`` -> ``"B8A"``; red -> B04."""
    s = re.sub(r"[\s_\-]", "", str(name)).upper()
    if s in _ALIASES:
        return _ALIASES[s]
    m = re.fullmatch(r"B(?:AND)?0*(\d{1,2})(A?)", s)
    if not m:
        return s
    return f"B{int(m.group(1))}A" if m.group(2) else f"B{int(m.group(1)):02d}"


def match_bands(input_bands: list[str], weight_bands: list[str]) -> list[int | None]:
    """For each input channel the index of the same band in ``weight_bands``, or None."""
    index = {canonical_band(b): i for i, b in enumerate(weight_bands)}
    return [index.get(canonical_band(b)) for b in input_bands]


@dataclass
class EncoderWeights:
    """Resolved pre-trained encoder weights.

    Attributes:
        name: catalogue name or file name. path: local file. sha256: its full SHA-256.
        backbone: the ResNet of the weights (None when a local file does not say).
        bands: the weights' input bands in channel order (None: a local file without sidecar; its
            channels are then taken to be the input bands in order).
        mean, std: the normalisation the weights expect per band (None: use the data's statistics).
        licence, citation: as the catalogue or sidecar gives them.
        state: the encoder state dict (torchvision names, ``fc.*`` removed).
    """

    name: str
    path: Path
    sha256: str
    backbone: str | None
    bands: list[str] | None
    mean: list[float] | None
    std: list[float] | None
    licence: str = ""
    citation: str = ""
    state: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def info(self) -> dict[str, Any]:
        """What the model card records (no tensors)."""
        keys = ("name", "sha256", "backbone", "bands", "licence", "citation")
        return {k: getattr(self, k) for k in keys} | {"file": self.path.name}


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle/zip errors of torch, or a non-tensor object that weights_only refuses
        raise ModelFileError(
            f"{path} is not a PyTorch state dict that can be loaded safely ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:160] if str(e) else ''}). Use a .pth file of tensors in torchvision ResNet names."
        ) from e
    if not isinstance(state, dict):
        raise ModelFileError(f"{path} holds a {type(state).__name__}, not a state dict of ResNet weights.")
    return encoder_state_dict(state)


def _sidecar(path: Path) -> dict[str, Any]:
    side = path.with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{side} is not valid JSON ({e}); fix or delete it.") from e


def resolve_encoder_weights(
    spec: str | None, backbone: str | None, feedback: Feedback | None = None
) -> EncoderWeights | None:
    """The weights ``spec`` names, downloaded when needed; None for ``""``/``"none"``.

    Args:
        spec: ``none``, a catalogue name or a ``.pth`` path.
        backbone: the model's ResNet (``resnet18``/``34``/``50``), None when it has no ResNet encoder.

    Raises:
        InputError: weights for a model without a ResNet encoder, a catalogue entry for another
            ResNet, or a spec that is neither a catalogue name nor an existing file.
        ModelFileError: download or file problems (see :func:`core.training.weights_catalog.fetch_weights`).
    """
    if not spec or spec.strip().lower() == "none":
        return None
    spec = spec.strip()
    if backbone is None:
        raise InputError(
            "Pre-trained encoder weights need a ResNet encoder: choose a ResNet backbone (resnet18, resnet34, "
            "resnet50) for unet or unet_early_fusion, or use deeplabv3plus."
        )
    if spec in CATALOG:
        return _from_entry(CATALOG[spec], backbone, feedback)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise InputError(
            f"Encoder weights {spec!r} are neither a catalogue name ({', '.join(CATALOG)}) nor an existing file."
        )
    side = _sidecar(path)
    if side.get("backbone") and side["backbone"] != backbone:
        raise InputError(f"{path.name} holds {side['backbone']} weights; choose backbone {side['backbone']}.")
    return EncoderWeights(
        side.get("name", path.stem),
        path,
        file_sha256(path),
        side.get("backbone"),
        side.get("bands"),
        side.get("mean"),
        side.get("std"),
        side.get("licence", ""),
        side.get("citation", ""),
        _load_state(path),
    )


def _from_entry(entry: WeightsEntry, backbone: str, feedback: Feedback | None) -> EncoderWeights:
    if entry.backbone != backbone:
        raise InputError(
            f"{entry.name} are {entry.backbone} weights; choose backbone {entry.backbone} (now {backbone})."
        )
    path, digest = fetch_weights(entry, feedback)
    return EncoderWeights(
        entry.name,
        path,
        digest,
        entry.backbone,
        list(entry.bands),
        list(entry.mean),
        list(entry.std),
        entry.licence,
        entry.citation,
        _load_state(path),
    )


def weights_normalisation(
    weights: EncoderWeights, bands: list[str], data_mean: list[float], data_std: list[float]
) -> tuple[list[float], list[float], str]:
    """Per-band ``(mean, std)`` in raster units for ``bands``, and a note of what was used.

    Bands the weights know get the weights' normalisation (given in Sentinel-2 digital numbers; divided by
    10000 when the data are reflectances, i.e. the matched bands' mean is below 10); the others keep
    the data's statistics (``data_mean``, ``data_std``).
    """
    if weights.bands is None or weights.mean is None or weights.std is None:
        return list(data_mean), list(data_std), "the data's band statistics (the weights name no normalisation)"
    idx = match_bands(bands, weights.bands)
    matched = [i for i, j in enumerate(idx) if j is not None]
    reflectance = bool(matched) and sorted(data_mean[i] for i in matched)[len(matched) // 2] < 10
    scale = 1e-4 if reflectance else 1.0
    mean = [weights.mean[j] * scale if j is not None else m for j, m in zip(idx, data_mean)]
    std = [weights.std[j] * scale if j is not None else s for j, s in zip(idx, data_std)]
    unit = "reflectance (DN / 10000)" if reflectance else "digital numbers"
    return (
        mean,
        std,
        f"{weights.name}'s normalisation for {len(matched)} bands (data in {unit}), the data's for the rest",
    )


def adapt_first_conv(
    pre: torch.Tensor, mapping: list[int | None], fresh: torch.Tensor, weight_bands: list[str], scheme: str
) -> torch.Tensor:
    """The first-layer kernel ``(O, C, k, k)`` for the input channels from a pre-trained ``(O, Cp, k, k)`` one.

    ``mapping[i]``: the pre-trained channel of input channel i, or None (initialised by ``scheme``
    from :data:`EXTRA_BAND_INIT`; ``fresh`` ``(O, C, k, k)`` holds the random initialisation).
    """
    if scheme not in EXTRA_BAND_INIT:
        raise InputError(f"Unknown extra-band initialisation {scheme!r}; use {', '.join(EXTRA_BAND_INIT)}.")
    used = [j for j in mapping if j is not None]
    mean = pre[:, used].mean(1) if used else pre.mean(1)
    red = match_bands(["B04"], weight_bands)[0]
    copy = pre[:, red] if scheme == "red" and red is not None else mean
    out = fresh.clone()
    for i, j in enumerate(mapping):
        if j is not None:
            out[:, i] = pre[:, j]
        elif scheme != "random":
            out[:, i] = copy
    copies = sum(j is None for j in mapping) if scheme != "random" else 0
    if copies and used:
        out *= len(used) / (len(used) + copies)
    return out


def load_encoder_weights(
    model: torch.nn.Module, weights: EncoderWeights, bands: list[str], scheme: str = "mean"
) -> dict[str, Any]:
    """Load ``weights`` into ``model.encoder`` with the first layer matched to ``bands`` (input channel names).

    Returns:
        ``{"matched": [[input band, weights band], ...], "initialised": [bands], "scheme": scheme}``.

    Raises:
        ModelFileError: the weights are not a ResNet of the model's depth (keys or shapes differ), or a
            local file without band names whose channel count differs from the input's.
    """
    enc = model.encoder
    state = dict(weights.state)
    pre = state.pop("conv1.weight", None)
    if pre is None:
        raise ModelFileError(f"{weights.path.name} has no conv1.weight: not a ResNet state dict in torchvision names.")
    try:
        missing, unexpected = enc.load_state_dict(state, strict=False)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = (lines[1] if len(lines) > 1 else lines[0] if lines else type(e).__name__)[:160]
        raise ModelFileError(
            f"{weights.path.name} does not fit a {enc.backbone} encoder ({detail}); "
            "choose the backbone the weights were trained with."
        ) from e
    missing = [k for k in missing if k != "conv1.weight"]
    if missing or unexpected:
        raise ModelFileError(
            f"{weights.path.name} is not a {enc.backbone} in torchvision names: {len(missing)} encoder weights "
            f"missing (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]}). Choose the "
            "backbone the weights were trained with."
        )
    wbands = weights.bands
    if wbands is None:
        if pre.shape[1] != len(bands):
            raise ModelFileError(
                f"{weights.path.name} takes {pre.shape[1]} bands, the chips have {len(bands)}, and no {weights.path.stem}.json "
                "names its bands: add that sidecar (bands, mean, std) or export the encoder with save_encoder_weights."
            )
        wbands = list(bands)
    mapping = match_bands(bands, wbands)
    with torch.no_grad():
        enc.conv1.weight.copy_(adapt_first_conv(pre.float(), mapping, enc.conv1.weight, wbands, scheme))
    return {
        "matched": [[b, wbands[j]] for b, j in zip(bands, mapping) if j is not None],
        "initialised": [b for b, j in zip(bands, mapping) if j is None],
        "scheme": scheme,
    }


def save_encoder_weights(
    model: torch.nn.Module, path: str | os.PathLike, bands: list[str], mean: list[float], std: list[float], **meta: str
) -> Path:
    """Write ``model.encoder`` as a catalogue-format ``.pth`` (torchvision names) plus its ``.json`` sidecar.

    The sidecar names the backbone, the bands in channel order and their normalisation (raster units),
    and any ``meta`` (``name``, ``licence``, ``citation``), so :func:`resolve_encoder_weights` can match
    and normalise another data set's bands to it.
    """
    out = Path(path)
    enc = model.encoder
    with atomic_output(out) as tmp:
        torch.save({k: v.detach().cpu() for k, v in enc.state_dict().items()}, tmp)
    side = {"backbone": enc.backbone, "bands": list(bands), "mean": list(mean), "std": list(std), **meta}
    with atomic_output(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(side, indent=1), encoding="utf-8")
    return out


def summary(weights: EncoderWeights, report: dict[str, Any]) -> str:
    """One log line: which bands took pre-trained filters and how the others were initialised."""
    extra = f"; {', '.join(report['initialised'])} initialised by '{report['scheme']}'" if report["initialised"] else ""
    rgb = " (ImageNet red/green/blue)" if weights.bands and tuple(weights.bands) == RGB else ""
    return (
        f"Encoder weights {weights.name}{rgb} (SHA-256 {weights.sha256[:12]}..., {weights.licence or 'licence not stated'}): "
        f"{len(report['matched'])} bands matched by name{extra}."
    )


__all__ = [
    "EXTRA_BAND_INIT",
    "EncoderWeights",
    "adapt_first_conv",
    "canonical_band",
    "load_encoder_weights",
    "match_bands",
    "resolve_encoder_weights",
    "save_encoder_weights",
    "summary",
    "weights_normalisation",
]
