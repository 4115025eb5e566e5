"""Encoder weights files and catalogue entries for the pre-trained-weights tests (pretrained, weights_catalog)."""

from __future__ import annotations

import hashlib

import torch

from deeplandcover.core.training import weights_catalog as wc
from deeplandcover.models.resnet import ResNetEncoder

S2 = list(wc.S2_BANDS)


def weights_file(tmp_path, backbone="resnet18", bands=S2, seed=0, name="enc.pth"):
    """Save a seeded ResNet encoder's state dict (with a classifier ``fc`` to strip) to ``tmp_path / name``.

    Returns ``(path, encoder)``; the encoder takes ``len(bands)`` input channels.
    """
    torch.manual_seed(seed)
    enc = ResNetEncoder(len(bands), backbone)
    state = {**enc.state_dict(), "fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)}
    path = tmp_path / name
    torch.save(state, path)
    return path, enc


def catalog_entry(path, backbone="resnet18", bands=S2, sha=None) -> wc.WeightsEntry:
    """A catalogue entry named ``test_weights`` for ``path`` (file:// URL), its SHA-256 prefix unless ``sha``."""
    digest = sha or hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return wc.WeightsEntry(
        "test_weights", path.as_uri(), digest, backbone, tuple(bands), (0.0,) * len(bands), (10000.0,) * len(bands),
        "CC-BY-4.0", "a test",
    )  # fmt: skip
