"""models.siamese: FC-Siam-diff and FC-Siam-conc (Caye Daudt et al. 2018) — shapes, weight sharing, ONNX."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deeplandcover.models.siamese import SiamConcUNet, SiamDiffUNet  # noqa: E402

from ..helpers.onnx_models import export_onnx  # noqa: E402

torch.set_num_threads(2)
SMALL = {"base_filters": 4, "depth": 2}


@pytest.mark.parametrize("cls", [SiamDiffUNet, SiamConcUNet])
@pytest.mark.parametrize(("b", "c", "k", "h", "w"), [(1, 2, 2, 32, 32), (2, 3, 4, 37, 45)])
def test_output_shape_any_size(cls, b, c, k, h, w):
    m = cls(2 * c, k, **SMALL).eval()
    with torch.no_grad():
        y = m(torch.randn(b, 2 * c, h, w))
    assert y.shape == (b, k, h, w) and y.dtype == torch.float32


@pytest.mark.parametrize("cls", [SiamDiffUNet, SiamConcUNet])
def test_one_encoder_for_both_dates(cls):
    """The encoder takes C channels (one date) and is used for both: its gradient comes from both halves."""
    m = cls(6, 2, **SMALL)
    assert m.encoders[0][0].in_channels == 3
    x = torch.randn(2, 6, 16, 16)
    x2 = x.clone()
    x2[:, 3:] = 0.0  # date 2 blank: the encoder still sees date 1, so its gradient is not zero
    m(x2).sum().backward()
    assert m.encoders[0][0].weight.grad.abs().sum() > 0


def test_siam_diff_is_symmetric_in_the_dates():
    """|f(b) - f(a)| at every level: swapping the dates gives the same logits (a change is a change)."""
    m = SiamDiffUNet(8, 2, **SMALL).eval()
    x = torch.randn(2, 8, 24, 24)
    swapped = torch.cat([x[:, 4:], x[:, :4]], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(m(x), m(swapped), rtol=1e-5, atol=1e-5)
    conc = SiamConcUNet(8, 2, **SMALL).eval()
    with torch.no_grad():
        assert not torch.allclose(conc(x), conc(swapped))  # conc keeps the order of the dates


def test_odd_channel_count_is_refused():
    with pytest.raises(ValueError, match="two dates"):
        SiamDiffUNet(5, 2)
    with pytest.raises(ValueError, match="depth"):
        SiamConcUNet(4, 2, depth=0)


@pytest.mark.parametrize("cls", [SiamDiffUNet, SiamConcUNet])
def test_onnx_equals_pytorch(cls, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    m = cls(6, 2, **SMALL).eval()
    path = export_onnx(m, tmp_path / "siam.onnx", (6, 32, 32))
    x = np.random.default_rng(0).standard_normal((2, 6, 45, 38)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
