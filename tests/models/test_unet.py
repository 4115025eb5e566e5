"""The plain U-Net and its early-fusion variant: level widths, odd sizes, dropout, argument errors."""

from __future__ import annotations

import pytest
import torch

from deeplandcover.models.unet import UNet, UNetEarlyFusion, check_two_dates


def test_levels_double_the_filters_and_features_keep_the_size() -> None:
    m = UNet(5, 3, base_filters=4, depth=3).eval()
    assert [e[0].out_channels for e in m.encoders] == [4, 8, 16, 32]
    assert m.encoders[0][0].in_channels == 5 and m.head.out_channels == 3
    x = torch.randn(2, 5, 19, 13)  # odd sizes: ceil-mode pooling, crop after up-sampling
    with torch.no_grad():
        assert m.features(x).shape == (2, 4, 19, 13)
        torch.testing.assert_close(m(x), m.head(m.features(x)))


def test_dropout_only_after_the_bottleneck() -> None:
    m = UNet(3, 2, base_filters=4, depth=2, dropout=0.3)
    drops = [i for i, e in enumerate(m.encoders) if any(isinstance(layer, torch.nn.Dropout2d) for layer in e)]
    assert drops == [2]
    assert not any(isinstance(layer, torch.nn.Dropout2d) for d in m.decoders for layer in d)
    assert not any(isinstance(layer, torch.nn.Dropout2d) for layer in UNet(3, 2, 4, 2).modules())


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="depth \\(0\\)"):
        UNet(3, 2, depth=0)
    with pytest.raises(ValueError, match="2C"):
        UNetEarlyFusion(5, 2, base_filters=4, depth=2)
    check_two_dates(6)  # even: two dates of 3 bands
    assert UNetEarlyFusion(6, 2, base_filters=4, depth=2)(torch.randn(1, 6, 8, 8)).shape == (1, 2, 8, 8)
