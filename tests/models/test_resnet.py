"""ResNet encoders with torchvision's parameter names, the ResNet U-Net, encoder freezing."""

from __future__ import annotations

import pytest
import torch

from deeplandcover.models import build_model
from deeplandcover.models.resnet import ResNetEncoder, encoder_state_dict
from deeplandcover.models.unet_resnet import ResNetUNet

# torchvision's resnet18/34/50 parameter counts (IMAGENET1K_V1 model cards) minus the 1000-class fc layer
TORCHVISION_ENCODER_PARAMS = {
    "resnet18": 11_689_512 - (512 * 1000 + 1000),
    "resnet34": 21_797_672 - (512 * 1000 + 1000),
    "resnet50": 25_557_032 - (2048 * 1000 + 1000),
}


@pytest.mark.parametrize("backbone", sorted(TORCHVISION_ENCODER_PARAMS))
def test_encoder_is_torchvisions_resnet(backbone) -> None:
    enc = ResNetEncoder(3, backbone)
    assert sum(p.numel() for p in enc.parameters()) == TORCHVISION_ENCODER_PARAMS[backbone]
    keys = set(enc.state_dict())
    expected = {"conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked", "layer1.0.conv1.weight"}
    expected |= {"layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var", "layer4.1.bn2.bias"}
    if backbone == "resnet50":
        expected |= {"layer1.0.conv3.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.weight"}
    assert expected <= keys


def test_encoder_state_dict_strips_wrappers_and_fc() -> None:
    sd = {f"module.{k}": v for k, v in ResNetEncoder(3, "resnet18").state_dict().items()}
    sd["module.fc.weight"] = torch.zeros(1000, 512)
    out = encoder_state_dict({"state_dict": sd})
    assert "fc.weight" not in out and "conv1.weight" in out
    ResNetEncoder(3, "resnet18").load_state_dict(out)  # strict: every key matches


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


def test_old_deeplab_checkpoints_still_load() -> None:
    new = build_model("deeplabv3plus", 4, 3, backbone="resnet18", aspp_channels=16)
    old = {}
    for k, v in new.state_dict().items():  # our names before the torchvision ones
        k = k.replace("encoder.conv1.", "encoder.stem.0.0.").replace("encoder.bn1.", "encoder.stem.0.1.")
        old[k.replace(".downsample.", ".down.")] = v
    assert any(k.startswith("encoder.stem.0.0.") for k in old)
    fresh = build_model("deeplabv3plus", 4, 3, backbone="resnet18", aspp_channels=16)
    fresh.load_state_dict(old)
    assert torch.equal(fresh.encoder.conv1.weight, new.encoder.conv1.weight)


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
