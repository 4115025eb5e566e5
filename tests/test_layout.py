"""core.layout.InputLayout: the one derivation of the model's channel count and input shape."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from deeplandcover.core.layout import InputLayout
from deeplandcover.core.modelcard import ModelCard


def test_single_pair_sequence_channels_and_shapes():
    single = InputLayout("single", bands=13, indices=2)
    assert single.in_channels == 15 and single.input_shape(64) == (15, 64, 64)
    pair = InputLayout("pair", bands=4, indices=1, dates=2)
    assert pair.date_channels == 5 and pair.in_channels == 10 and pair.input_shape(32) == (10, 32, 32)
    seq = InputLayout("sequence", bands=10, indices=0, dates=5)
    assert seq.in_channels == 10 and seq.input_shape(16) == (5, 10, 16, 16)


def test_manifest_and_card_agree():
    """A chip manifest and the card made from it give the same layout (the card's vocabulary: task, layout)."""
    for kind, task, layout, steps in (
        ("single", "segmentation", "BCHW", []),
        ("pair", "change", "BCHW", []),
        ("sequence", "segmentation", "BTCHW", ["2020-01-01", "2020-02-01", "2020-03-01"]),
    ):
        manifest = SimpleNamespace(kind=kind, bands=["B02", "B03", "B04"], num_time_steps=max(1, len(steps)))
        card = ModelCard(
            "unet", ["B02", "B03", "B04"], [0.0] * 3, [1.0] * 3, [], task=task, layout=layout, indices=["NDVI"]
        )
        card.time_steps = len(steps)
        from_manifest = InputLayout.of_manifest(manifest, indices=1)
        from_card = InputLayout.of_card(card)
        assert from_manifest == from_card, kind
        assert card.in_channels == from_manifest.in_channels == (8 if kind == "pair" else 4)


def test_bad_layouts_are_refused():
    with pytest.raises(ValueError, match="Unknown input kind 'stack'"):
        InputLayout("stack", bands=3)
    with pytest.raises(ValueError, match="Negative"):
        InputLayout("single", bands=-1)


def test_frozen():
    with pytest.raises(AttributeError):
        InputLayout("single", bands=3).bands = 4
