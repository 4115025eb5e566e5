"""DeepLabv3+: checkpoints saved under the earlier parameter names still load."""

from __future__ import annotations

import torch

from deeplandcover.models import build_model

# torchvision's resnet18/34/50 parameter counts (IMAGENET1K_V1 model cards) minus the 1000-class fc layer


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
