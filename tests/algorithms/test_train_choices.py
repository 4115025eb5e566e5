"""algorithms.train_choices: Train Model's choices and pre-trained weights in the dialog's words."""

from __future__ import annotations

from deeplandcover.algorithms.train_choices import CHOICE_LABELS, WEIGHTS_CHOICES, weights_label
from deeplandcover.core.training.config import CHOICES
from deeplandcover.core.training.weights_catalog import CATALOG


def test_every_choice_of_the_config_has_words():
    """The device has the shared DEVICE dropdown of every algorithm (algorithms.parameters), not these words."""
    missing = {v for field, values in CHOICES.items() if field != "device" for v in values if v not in CHOICE_LABELS}
    assert not missing, f"choices without a dialog label: {sorted(missing)}"


def test_weights_choices_keep_the_catalogue_order_after_none():
    assert WEIGHTS_CHOICES[0] == "" and list(WEIGHTS_CHOICES[1:]) == list(CATALOG)
    labels = [weights_label(n) for n in WEIGHTS_CHOICES]
    assert labels[0] == "Default of the architecture"  # none, or the authors' weights for Presto and Dynamic World
    assert len(set(labels)) == len(labels)  # the dropdown tells them apart


def test_weights_label_names_the_source_backbone_and_bands():
    rgb = next(n for n, e in CATALOG.items() if n.startswith("imagenet") and e.backbone == "resnet50")
    assert weights_label(rgb) == "ImageNet ResNet-50 (RGB)"
    s2 = next(n for n in CATALOG if n.startswith("ssl4eo"))
    assert weights_label(s2).startswith("SSL4EO ResNet-") and weights_label(s2).endswith("(Sentinel-2)")
    assert weights_label("satlas_resnet50_sentinel2_si_ms") == "Satlas ResNet-50 (Sentinel-2)"
