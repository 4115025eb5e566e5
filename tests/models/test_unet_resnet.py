"""The ResNet U-Net: any input size, early fusion of two dates, encoder freezing with fixed batch-norm statistics."""

from __future__ import annotations

import pytest
import torch

from deeplandcover.models import build_model
from deeplandcover.models.unet_resnet import ResNetUNet

# torchvision's resnet18/34/50 parameter counts (IMAGENET1K_V1 model cards) minus the 1000-class fc layer


@pytest.mark.parametrize("backbone", ["resnet18", "resnet34", "resnet50"])
def test_resnet_unet_any_size(backbone) -> None:
    m = build_model("unet", 5, 4, backbone=backbone).eval()
    assert isinstance(m, ResNetUNet)
    with torch.no_grad():
        assert m(torch.randn(2, 5, 37, 50)).shape == (2, 4, 37, 50)
        assert m(torch.randn(1, 5, 64, 64)).shape == (1, 4, 64, 64)


def test_early_fusion_with_a_resnet_takes_both_dates() -> None:
    m = build_model("unet_early_fusion", 6, 2, backbone="resnet18").eval()
    assert isinstance(m, ResNetUNet) and m.encoder.conv1.in_channels == 6
    with pytest.raises(ValueError, match="2C"):
        build_model("unet_early_fusion", 5, 2, backbone="resnet18")
    with pytest.raises(ValueError, match="no ResNet backbone"):
        build_model("unet_convlstm", 3, 2, backbone="resnet18")


def test_frozen_encoder_gets_no_gradient_and_keeps_its_batchnorm_statistics() -> None:
    m = build_model("unet", 3, 2, backbone="resnet18")
    m.set_encoder_frozen(True)
    m.train()
    assert not m.encoder.bn1.training and m.decoders[0][1].training
    before = m.encoder.bn1.running_mean.clone()
    m(torch.randn(2, 3, 32, 32)).sum().backward()
    assert m.encoder.conv1.weight.grad is None and m.head.weight.grad is not None
    assert torch.equal(m.encoder.bn1.running_mean, before)
    m.set_encoder_frozen(False)
    assert m.encoder.bn1.training and m.encoder.conv1.weight.requires_grad
    m.set_encoder_frozen(False, bn_frozen=True)
    assert not m.encoder.bn1.training and m.encoder.conv1.weight.requires_grad
