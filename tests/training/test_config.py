"""TrainConfig: its choices are declared once (registry and Literal types) and validated from there."""

from __future__ import annotations

import dataclasses

import pytest

from deeplandcover.core.errors import InputError
from deeplandcover.core.training.config import CHOICES, TrainConfig
from deeplandcover.models import ARCHITECTURES, BACKBONES


def test_choices_come_from_the_registry_and_defaults_are_choices():
    assert CHOICES["architecture"] == ARCHITECTURES and CHOICES["backbone"] == BACKBONES
    defaults = TrainConfig()
    for name, choices in CHOICES.items():
        assert getattr(defaults, name) in choices, name
    assert set(CHOICES) <= {f.name for f in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "architecture",
            "segformer",
            "use unet, deeplabv3plus, unet_convlstm, unet_early_fusion, two_branch_unet, fc_siam_diff, fc_siam_conc, presto or dynamicworld",
        ),
        ("monitor", "acc", "Unknown monitor 'acc'; use val_loss, miou or f1"),
        ("loss", "dice", "Unknown loss 'dice'; use ce, ce_jaccard or focal"),
        ("class_weights", "x", "Unknown class weights 'x'; use none, inverse or median"),
        ("schedule", "step", "Unknown schedule 'step'; use plateau or cosine"),
        ("device", "tpu", "Unknown device 'tpu'; use auto, cpu or cuda"),
        ("backbone", "vgg", "use default, resnet18, resnet34 or resnet50"),
        ("warmup_epochs", -1, "Warm-up epochs must be 0 or more"),
        ("freeze_epochs", -1, "Freeze epochs must be 0 or more"),
        ("encoder_lr_factor", 0.0, "encoder learning-rate factor"),
        ("extra_band_init", "zeros", "use mean, red or random"),
        ("sequence_length", 3, "choose presto or unet_convlstm"),
    ],
)
def test_validate_names_the_field_and_the_choices(field, value, message):
    with pytest.raises(InputError, match=message):
        TrainConfig(**{field: value}).validate()
