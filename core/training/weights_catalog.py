"""Pre-trained ResNet encoder weights: the catalogue, the per-user cache, the checked download.

The catalogue (:data:`CATALOG`) lists plain state dicts in torchvision/timm parameter names
(``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight`` ... ``fc.*``), the layout torchvision's ImageNet
weights and torchgeo's Sentinel-2 weights share. Each entry gives the bands the weights were trained on
(in their channel order), the normalisation they expect, the licence and the citation. The file names of
these URLs end in the first 8 hex digits of the file's SHA-256 (torchvision's and torchgeo's convention);
that published prefix is what the catalogue holds and what a download is checked against, with the full
SHA-256 of the file recorded in the model card.

Normalisation is given in Sentinel-2 digital numbers (reflectance x 10000, as in L1C/L2A products):
``(DN - mean) / std``; :func:`core.training.pretrained.weights_normalisation` converts it for data in
reflectance (0-1) units.

No torch here: loading is :func:`core.training.pretrained.load_encoder_weights`. Train Model's dialog
imports this module, so it stays light: nothing beyond the standard library at import time.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..cache import user_cache_dir
from ..errors import CanceledError, ModelFileError
from ..feedback import Feedback, ensure_feedback
from ..provenance import file_sha256

#: Sentinel-2 MSI bands in product order (L1C: 13 bands).
S2_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
#: ImageNet RGB weights take red, green, blue (torchvision's channel order).
RGB = ("red", "green", "blue")

_IMAGENET_CITE = (
    "He, K., Zhang, X., Ren, S., & Sun, J. (2016). Deep Residual Learning for Image Recognition. CVPR 2016; "
    "weights: torchvision (PyTorch), trained on ImageNet-1k (Russakovsky et al., 2015, IJCV 115, 211-252)."
)
_SSL4EO_CITE = (
    "Wang, Y., Braham, N. A. A., Xiong, Z., Liu, C., Albrecht, C. M., & Zhu, X. X. (2023). SSL4EO-S12: A "
    "large-scale multimodal, multitemporal dataset for self-supervised learning in Earth observation. IEEE "
    "Geoscience and Remote Sensing Magazine, 11(3), 98-106. https://doi.org/10.1109/MGRS.2023.3281651"
)
_SATLAS_CITE = (
    "Bastani, F., Wolters, P., Gupta, R., Ferdinando, J., & Kembhavi, A. (2023). SatlasPretrain: A Large-Scale "
    "Dataset for Remote Sensing Image Understanding. ICCV 2023, 16772-16782."
)


@dataclass(frozen=True)
class WeightsEntry:
    """One catalogue entry.

    Attributes:
        name: catalogue name (the ``ENCODER_WEIGHTS`` value).
        url: download URL (``https://`` or, in tests, ``file://``).
        sha256: the file's SHA-256, whole or its published leading hex digits (at least 8).
        backbone: ``resnet18``, ``resnet34`` or ``resnet50``.
        bands: the input bands of the weights, in channel order (Sentinel-2 names, or :data:`RGB`).
        mean, std: the normalisation the weights expect, per band, in Sentinel-2 digital numbers.
        licence, citation: of the weights.
    """

    name: str
    url: str
    sha256: str
    backbone: str
    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    licence: str
    citation: str


def _published_prefix(url: str) -> str:
    """The SHA-256 prefix torchvision and torchgeo put in their file names (``resnet18-f37072fd.pth``)."""
    return url.rsplit("-", 1)[1].split(".")[0]


def _imagenet(backbone: str, file: str) -> WeightsEntry:
    # ImageNet statistics of 0-1 intensities; a Sentinel-2 reflectance of 0.3 (DN 3000) taken as intensity 1
    # (the brightness range of true-colour composites).
    return WeightsEntry(
        f"imagenet_{backbone}",
        f"https://download.pytorch.org/models/{file}",
        _published_prefix(file),
        backbone,
        RGB,
        (0.485 * 3000, 0.456 * 3000, 0.406 * 3000),
        (0.229 * 3000, 0.224 * 3000, 0.225 * 3000),
        "BSD-3-Clause (torchvision); ImageNet terms of access apply",
        _IMAGENET_CITE,
    )


def _hf(name: str, backbone: str, path: str, bands_mean_std: tuple, licence: str, cite: str) -> WeightsEntry:
    """A torchgeo entry on Hugging Face; ``bands_mean_std``: the weights' bands and their normalisation (DN)."""
    bands, mean, std = bands_mean_std
    return WeightsEntry(
        name, f"https://hf.co/torchgeo/{path}", _published_prefix(path), backbone, bands, mean, std, licence, cite
    )


def _ssl4eo(backbone: str, path: str) -> WeightsEntry:
    """An SSL4EO-S12 MoCo ResNet: the 13 L1C bands, DN / 10000, CC-BY-4.0."""
    return _hf(
        f"ssl4eo_s12_{backbone}_moco",
        backbone,
        path,
        (S2_BANDS, (0.0,) * 13, (10000.0,) * 13),
        "CC-BY-4.0",
        _SSL4EO_CITE,
    )


_SATLAS_MS = ("B04", "B03", "B02", "B05", "B06", "B07", "B08", "B11", "B12")

#: name -> entry; the ImageNet ResNets and torchgeo's SSL4EO-S12 (13 bands, DN / 10000) and
#: SatlasPretrain (9 bands: true-colour bytes / 255, others DN / 8160) Sentinel-2 ResNets.
CATALOG: dict[str, WeightsEntry] = {
    e.name: e
    for e in (
        _imagenet("resnet18", "resnet18-f37072fd.pth"),
        _imagenet("resnet34", "resnet34-b627a593.pth"),
        _imagenet("resnet50", "resnet50-0676ba61.pth"),
        _ssl4eo(
            "resnet18",
            "resnet18_sentinel2_all_moco/resolve/5b8cddc9a14f3844350b7f40b85bcd32aed75918/"
            "resnet18_sentinel2_all_moco-59bfdff9.pth",
        ),
        _ssl4eo(
            "resnet50",
            "resnet50_sentinel2_all_moco/resolve/da4f3c9dbe09272eb902f3b37f46635fa4726879/"
            "resnet50_sentinel2_all_moco-df8b932e.pth",
        ),
        _hf(
            "satlas_resnet50_sentinel2_si_ms",
            "resnet50",
            "satlas/resolve/081d6607431bf36bdb59c223777cbb267131b8f2/sentinel2_resnet50_si_ms-1f454cc6.pth",
            # true-colour byte ~ DN / 10 (0-2550 -> 0-255), then / 255
            (_SATLAS_MS, (0.0,) * 9, (2550.0,) * 3 + (8160.0,) * 6),
            "ODC-BY-1.0 (SatlasPretrain)",
            _SATLAS_CITE,
        ),
    )
}


def cache_dir() -> Path:
    """The per-user weights folder: ``$DLC_WEIGHTS_DIR``, else the platform's user cache + ``deeplandcover/weights``."""
    return user_cache_dir("weights", "DLC_WEIGHTS_DIR")


def _check_hash(entry: WeightsEntry, digest: str, where: str) -> None:
    if not digest.startswith(entry.sha256.lower()):
        raise ModelFileError(
            f"{where} does not match the catalogue's SHA-256 for {entry.name} (expected {entry.sha256}..., got "
            f"{digest[:16]}...): the file is damaged or not these weights. Delete it and run again to download it."
        )


def fetch_weights(
    entry: WeightsEntry, feedback: Feedback | None = None, folder: Path | None = None
) -> tuple[Path, str]:
    """The local file of a catalogue entry and its full SHA-256: from the cache, or downloaded into it (checked, atomic).

    Progress and cancel go through ``feedback``. The file is kept under ``folder`` (default
    :func:`cache_dir`) with the URL's file name.

    Raises:
        ModelFileError: download failed (offline: the message says where to put the file by hand),
            incomplete (fewer bytes than announced) or SHA-256 mismatch.
        CanceledError: canceled during the download.
    """
    from ..raster.io import atomic_output

    fb = ensure_feedback(feedback)
    folder = Path(folder or cache_dir())
    target = folder / entry.url.rsplit("/", 1)[-1]
    if target.is_file():
        digest = file_sha256(target)
        _check_hash(entry, digest, str(target))
        return target, digest
    folder.mkdir(parents=True, exist_ok=True)
    fb.info(f"Downloading the {entry.name} encoder weights from {entry.url} to {target}.")
    try:
        with urllib.request.urlopen(entry.url, timeout=60) as resp, atomic_output(target) as tmp:
            digest, n, size = _stream(resp, tmp, fb)
            if size and n != size:
                raise ModelFileError(f"The download of {entry.url} stopped after {n} of {size} bytes; run again.")
            _check_hash(entry, digest, f"The download of {entry.url}")
    except (ModelFileError, CanceledError):
        raise
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise ModelFileError(
            f"Could not download the {entry.name} encoder weights from {entry.url} ({getattr(e, 'reason', e)}). "
            f"Without internet access: download that file on a connected machine and copy it to {target}, "
            "or give the file's path as the encoder weights."
        ) from e
    return target, digest


def _stream(resp, tmp: Path, fb: Feedback) -> tuple[str, int, int]:
    """Copy a response into ``tmp`` with progress and cancel; ``(sha256 hex, bytes, announced size or 0)``."""
    size = int(resp.headers.get("Content-Length") or 0) if getattr(resp, "headers", None) else 0
    h, n = hashlib.sha256(), 0
    with open(tmp, "wb") as out:
        for block in iter(lambda: resp.read(1 << 20), b""):
            if fb.is_canceled():
                raise CanceledError("Canceled during the download of the encoder weights.")
            out.write(block)
            h.update(block)
            n += len(block)
            if size:
                fb.set_progress(100.0 * n / size)
    return h.hexdigest(), n, size
