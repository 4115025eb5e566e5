"""ConvLSTM: the cell against its equations, the U-Net ConvLSTM built from a config or its JSON fields."""

from __future__ import annotations

import pytest
import torch

from deeplandcover.models import build_model
from deeplandcover.models.convlstm import ConvLSTMCell

torch.set_num_threads(2)


def test_convlstm_cell_matches_equations():
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 3, 3)
    with torch.no_grad():
        cell.w_c.normal_()
    x1, x2 = torch.randn(1, 2, 5, 5), torch.randn(1, 2, 5, 5)
    h1, c1 = cell(x1)
    h2, c2 = cell(x2, (h1, c1))
    # by hand with explicit zero states
    g = cell.conv_x(x2) + cell.conv_h(h1)
    gi, gf, gc, go = g.chunk(4, 1)
    i = torch.sigmoid(gi + cell.w_c[0] * c1)
    f = torch.sigmoid(gf + cell.w_c[1] * c1)
    c = f * c1 + i * torch.tanh(gc)
    o = torch.sigmoid(go + cell.w_c[2] * c1)
    torch.testing.assert_close(c2, c)
    torch.testing.assert_close(h2, o * torch.tanh(c))
    g0 = cell.conv_x(x1) + cell.conv_h(torch.zeros(1, 3, 5, 5))
    gi, gf, gc, go = g0.chunk(4, 1)
    torch.testing.assert_close(h1, torch.sigmoid(go) * torch.tanh(torch.sigmoid(gi) * torch.tanh(gc)))


def test_convlstm_layers_from_a_config_or_its_json_fields():
    from deeplandcover.models.convlstm import ConvLSTMConfig, UNetConvLSTM

    torch.manual_seed(0)
    a = UNetConvLSTM(3, 4, 4, 2, 6, lstm=ConvLSTMConfig(kernel_size=5, pmap=False))
    torch.manual_seed(0)
    b = build_model("unet_convlstm", 3, 4, base_filters=4, depth=2, hidden=6, lstm={"kernel_size": 5, "pmap": False})
    assert not a.pmap and a.lstm1.conv_x.kernel_size == (5, 5) and a.head.in_channels == 6
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    paper = UNetConvLSTM(3, 4, 4, 2)
    assert paper.pmap and paper.head.in_channels == 32 and paper.lstm1.conv_x.kernel_size == (3, 3)
    with pytest.raises(ValueError, match="kernel"):
        build_model("unet_convlstm", 3, 4, lstm={"kernel": 5})
