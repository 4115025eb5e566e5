"""core.inference.session: the DEVICE string to ONNX Runtime execution providers; the band-map parameter."""

from __future__ import annotations

import pytest

from deeplandcover.core.errors import InputError
from deeplandcover.core.inference.bands import parse_band_map
from deeplandcover.core.inference.session import resolve_providers


def test_device_and_band_map_parsing():
    assert resolve_providers("cpu") == (["CPUExecutionProvider"], None)
    provs, warn = resolve_providers("cuda:1")
    if "CUDAExecutionProvider" not in [p if isinstance(p, str) else p[0] for p in provs]:
        assert warn and "onnxruntime-gpu" in warn
    with pytest.raises(InputError):
        resolve_providers("tpu")
    assert parse_band_map(" 4, 3,2 ,8") == [4, 3, 2, 8]
    assert parse_band_map("") is None
    with pytest.raises(InputError):
        parse_band_map("4,x")
