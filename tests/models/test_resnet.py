"""ResNet encoders with torchvision's parameter names and the state dicts taken from other checkpoints."""

from __future__ import annotations

import pytest
import torch

from deeplandcover.models.resnet import ResNetEncoder, encoder_state_dict

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
