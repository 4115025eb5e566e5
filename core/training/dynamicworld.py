"""Dynamic World as a ready Classify Pixels model: the authors' checkpoint -> our PyTorch network -> ONNX + card.

The checkpoint is the ``variables/`` folder of the authors' "forward" SavedModel (github.com/google/dynamicworld
at a pinned commit, :data:`CHECKPOINT_FILES`): read from ``<weights folder>/dynamicworld/forward/variables/``
(the folder :func:`core.training.weights_catalog.cache_dir` names: ``$DLC_WEIGHTS_DIR`` or the user cache),
downloaded there with SHA-256 checks when missing. :func:`build_onnx` loads it into
:class:`models.dynamicworld.DynamicWorld` (no TensorFlow, :mod:`models.tf_bundle`), exports the network with
a softmax appended (like every model, :mod:`core.training.onnx_export`: opset 17, dynamic batch, height and
width; verified against PyTorch) and stores :func:`dynamicworld_card`. Classify Pixels reaches it through
the catalogue name ``dynamicworld`` (:func:`core.inference.catalog.dynamicworld_onnx`).

Brown, C. F., et al. (2022). Dynamic World, Near real-time global 10 m land use land cover mapping.
Scientific Data, 9, 251. https://doi.org/10.1038/s41597-022-01307-4
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import torch

from ...models import dynamicworld as dw
from ...models.tf_bundle import TensorBundleError
from ..classes import ClassInfo
from ..errors import ModelFileError
from ..feedback import Feedback, ensure_feedback
from ..modelcard import ModelCard
from .onnx_export import library_versions, write_checked_onnx
from .weights_catalog import WeightsEntry, cache_dir, fetch_weights

#: The authors' repository at the commit the weights were copied from, folder ``model/forward/``.
UPSTREAM = (
    "https://raw.githubusercontent.com/google/dynamicworld/0dd288fae5fb5291d988e5ea3c12eb91df481ec5/model/forward/"
)
#: Where the checkpoint lies under the weights folder (the layout of the authors' repository).
SUBFOLDER = Path("dynamicworld", "forward", "variables")
LICENCE = "Apache-2.0"
CITATION = (
    "Brown, C. F., Brumby, S. P., Guzder-Williams, B., Birch, T., Hyde, S. B., Mazzariello, J., Czerwinski, W., "
    "Pasquarella, V. J., Haertel, R., Ilyushchenko, S., Schwehr, K., Weisse, M., Stolle, F., Hanson, C., Guinan, "
    "O., Moore, R., & Tait, A. M. (2022). Dynamic World, Near real-time global 10 m land use land cover mapping. "
    "Scientific Data, 9, 251. https://doi.org/10.1038/s41597-022-01307-4"
)
#: The NOTICE of the authors' repository, which the Apache-2.0 licence asks to keep with the weights.
NOTICE = (
    "This code is produced for the Dynamic World Project by Google in partnership with National Geographic "
    "and the World Resources Institute."
)
_P0 = tuple(p for p, _ in dw.NORM_PARAMS)
_P1 = tuple(s for _, s in dw.NORM_PARAMS)


def _file(name: str, sha256: str) -> WeightsEntry:
    return WeightsEntry(
        f"dynamicworld/{name}", UPSTREAM + "variables/" + name, sha256, "", dw.BANDS, _P0, _P1, LICENCE, CITATION
    )


#: The checkpoint files (index and data) with their SHA-256.
CHECKPOINT_FILES = (
    _file("variables.index", "f27000c6a3d7dcd3e76e333331b108697712c734d5d5ef11b3f34571027c8436"),
    _file("variables.data-00000-of-00001", "c4a38299f2c0a741682cbe48810d55afdc832ff451e3d3708082751fe655fcb1"),
)
#: Suggested tiling (pixels): the network sees about 40 px around a pixel (a 3x3 convolution, then nine
#: 3x3 depthwise convolutions at half resolution), so 64 px of overlap hide the tile edges.
TILE_SIZE, OVERLAP = 256, 64


def checkpoint_folder(
    feedback: Feedback | None = None, weights_dir: str | os.PathLike | None = None
) -> tuple[Path, dict]:
    """The local checkpoint folder (files checked or downloaded) and ``{file name: SHA-256}``.

    Args:
        weights_dir: the weights folder (default :func:`core.training.weights_catalog.cache_dir`).

    Raises:
        ModelFileError: a file is missing and cannot be downloaded (the message says where to put it), or
            its SHA-256 differs.
    """
    folder = Path(weights_dir or cache_dir()) / SUBFOLDER
    digests = {}
    for entry in CHECKPOINT_FILES:
        path, digest = fetch_weights(entry, feedback, folder)
        digests[path.name] = digest
    return folder, digests


def dynamicworld_card(digests: dict[str, str], build: int) -> ModelCard:
    """The model card of the Dynamic World model: bands, normalisation, classes and colours, licence.

    Args:
        digests: ``{checkpoint file name: SHA-256}``, recorded with the source URL.
        build: the build version (:data:`core.inference.catalog.DYNAMICWORLD_BUILD`).
    """
    return ModelCard(
        architecture="dynamicworld",
        bands=list(dw.BANDS),
        mean=list(_P0),
        std=list(_P1),
        normalization="dynamicworld",
        classes=[ClassInfo(i, name, colour) for i, (name, colour) in enumerate(dw.CLASSES)],
        tile_size=TILE_SIZE,
        overlap=OVERLAP,
        pixel_size=[10.0, 10.0],
        pixel_size_units="metre",
        output="probabilities",
        arch_params={"in_channels": len(dw.BANDS), "num_classes": len(dw.CLASSES)},
        training={
            "source": "the authors' published weights, not trained here (Sentinel-2 L1C, 10 m)",
            "weights": {"url": UPSTREAM + "variables/", "sha256": dict(digests)},
            "citation": CITATION,
            "build": build,
        },
        licence=LICENCE,
        attribution=f"{NOTICE} {CITATION}",
        versions=library_versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def load_pretrained(folder: Path) -> dw.DynamicWorld:
    """The network with the checkpoint in ``folder`` loaded (eval mode).

    Raises:
        ModelFileError: the checkpoint is damaged or not Dynamic World's.
    """
    try:
        return dw.pretrained(folder)
    except (TensorBundleError, ValueError, KeyError) as e:
        raise ModelFileError(
            f"The Dynamic World checkpoint in {folder} cannot be read ({e}). Delete the folder's files to "
            "download them again."
        ) from e


def build_onnx(
    out_path: str | os.PathLike,
    build: int,
    feedback: Feedback | None = None,
    weights_dir: str | os.PathLike | None = None,
) -> Path:
    """Make the Dynamic World ONNX model with its card at ``out_path`` (atomic: nothing is left on failure).

    Steps: :func:`checkpoint_folder`, :func:`load_pretrained`, ``torch.onnx.export`` of the network with a
    softmax appended (opset 17, dynamic batch/height/width), the parity check against PyTorch on a tile of
    normalised values (recorded in ``card.training["onnx_parity"]``; must pass), the card, ``onnx.checker``.

    Args:
        build: the build version recorded in the card.
        weights_dir: the weights folder (default :func:`core.training.weights_catalog.cache_dir`).

    Returns:
        ``out_path``.

    Raises:
        ModelFileError: no checkpoint (offline: the message says where to put the files), a damaged one,
            a failed export or parity check.
    """
    fb = ensure_feedback(feedback)
    folder, digests = checkpoint_folder(fb, weights_dir)
    model = load_pretrained(folder)
    card = dynamicworld_card(digests, build)
    x = torch.rand(1, len(dw.BANDS), 96, 80, generator=torch.Generator().manual_seed(0))  # normalised: (0, 1)
    out = Path(out_path)
    parity = write_checked_onnx(model, card, out, x, require_parity=True, what="Dynamic World")
    fb.info(f"Dynamic World model written to {out} (ONNX vs PyTorch max |diff| {parity.max_abs_diff:.1e}).")
    return out
