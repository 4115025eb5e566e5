"""Models: shapes over batch/channels/classes, odd sizes, registry errors, ONNX parity on another size."""

from __future__ import annotations

import pytest
import torch

from deeplandcover.core.classes import ClassInfo
from deeplandcover.core.modelcard import ModelCard, read_card
from deeplandcover.core.training.onnx_export import check_parity, export_onnx
from deeplandcover.models import ARCHITECTURES, BACKBONES, MODELS, SEQUENCE_MODELS, build_model, model_class
from deeplandcover.models.deeplab import RESNETS

torch.set_num_threads(2)
SMALL = {
    "unet": {"base_filters": 4, "depth": 3},
    "unet_early_fusion": {"base_filters": 4, "depth": 2},
    "unet_convlstm": {"base_filters": 4, "depth": 2, "hidden": 8},
    "deeplabv3plus": {"backbone": "resnet18", "aspp_channels": 16},
    "two_branch_unet": {"base_filters": 4, "depth": 2},
    "fc_siam_diff": {"base_filters": 4, "depth": 2},
    "fc_siam_conc": {"base_filters": 4, "depth": 2},
    "presto": {"months": [6, 7, 8]},  # + bands (by channel count, _params): the NIR groups, then unused names
    "dynamicworld": {},
}


def _params(name: str, c: int) -> dict:
    return {**SMALL[name], "bands": ["B08", "B8A", "B02", "B03"][:c]} if name == "presto" else SMALL[name]


def _input(name: str, b: int, c: int, h: int, w: int, t: int = 3) -> torch.Tensor:
    return torch.randn(b, t, c, h, w) if name in SEQUENCE_MODELS else torch.randn(b, c, h, w)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize(("b", "c", "k"), [(1, 2, 2), (2, 4, 5)])
def test_output_shape(name, b, c, k):
    m = build_model(name, c, k, **_params(name, c)).eval()
    with torch.no_grad():
        y = m(_input(name, b, c, 32, 32))
    assert y.shape == (b, k, 32, 32)
    assert y.dtype == torch.float32


@pytest.mark.parametrize(
    ("name", "h", "w"),
    # Dynamic World works at half resolution: H, W >= 2 (no 1 x 1 case for it)
    [(n, h, w) for n in sorted(MODELS) for h, w in ((17, 23), (33, 9), (1, 1)) if n != "dynamicworld" or h >= 2],
)
def test_odd_sizes(name, h, w):
    m = build_model(name, 4, 3, **_params(name, 4)).eval()
    with torch.no_grad():
        assert m(_input(name, 1, 4, h, w)).shape == (1, 3, h, w)


def test_training_step_backprop():
    m = build_model("unet_convlstm", 3, 4, **SMALL["unet_convlstm"])
    y = m(torch.randn(2, 3, 3, 16, 16))
    y.sum().backward()
    assert m.lstm1.w_c.grad is not None and m.unet.head.weight.grad is not None


def test_registry_errors():
    with pytest.raises(
        ValueError,
        match="valid names: deeplabv3plus, dynamicworld, fc_siam_conc, fc_siam_diff, presto, two_branch_unet, unet, unet_convlstm, unet_early_fusion",
    ):
        build_model("segformer", 3, 2)
    with pytest.raises(ValueError, match="resnet18"):
        build_model("deeplabv3plus", 3, 2, backbone="vgg")
    with pytest.raises(ValueError, match="two dates"):
        build_model("unet_early_fusion", 3, 2)
    with pytest.raises(ValueError, match="Invalid parameters"):
        build_model("unet", 3, 2, nonsense=1)


def test_registry_names_each_architecture_once():
    # the one list of names: the dialog, the CLI and TrainConfig take ARCHITECTURES; each builds its class
    assert ARCHITECTURES == tuple(MODELS) and ARCHITECTURES[0] == "unet"
    assert {name: model_class(name).__name__ for name in ARCHITECTURES} == {
        "unet": "UNet",
        "deeplabv3plus": "DeepLabV3Plus",
        "unet_convlstm": "UNetConvLSTM",
        "unet_early_fusion": "UNetEarlyFusion",
        "two_branch_unet": "TwoBranchUNet",
        "fc_siam_diff": "SiamDiffUNet",
        "fc_siam_conc": "SiamConcUNet",
        "presto": "PrestoClassifier",
        "dynamicworld": "DynamicWorldClassifier",
    }
    assert BACKBONES == ("default", *RESNETS)


def test_import_without_torch_lists_the_architectures():
    import subprocess
    import sys

    code = (
        "import sys, deeplandcover.models as m, deeplandcover.core.training.config as c; "
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, sorted(sys.modules); "
        "print(c.CHOICES['architecture'] == m.ARCHITECTURES)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "True", res.stderr


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_parity_dynamic_size(name, tmp_path):
    c = 4
    m = build_model(name, c, 3, **_params(name, c)).eval()
    card = ModelCard(
        name,
        [f"B{i}" for i in range(c)],
        [0.0] * c,
        [1.0] * c,
        [ClassInfo(v, f"c{v}") for v in (1, 2, 3)],
        layout="BTCHW" if name in SEQUENCE_MODELS else "BCHW",
    )
    path = tmp_path / "m.onnx"
    parity = export_onnx(m, card, path, _input(name, 2, c, 32, 32))
    assert parity.passed and parity.max_abs_diff < 1e-4
    other = check_parity(path, m, _input(name, 1, c, 45, 27))  # other batch and size than the export sample
    assert other.passed, other
    back = read_card(path)
    assert back.architecture == name and back.output == "probabilities"
    assert back.training["onnx_parity"]["passed"] is True
