"""Tests of installer.gpu: NVIDIA GPU detection, the torch package index and CUDA builds."""

from __future__ import annotations

import os
import sys

import pytest

from deeplandcover.core import deps
from deeplandcover.core.errors import InputError
from deeplandcover.installer import gpu, plan

from .installer_helpers import isolated, script  # noqa: F401  (fixtures)


# -- GPU ------------------------------------------------------------------------------------------
@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    """``fake_smi(output, rc)`` puts an nvidia-smi printing ``output`` first on PATH; no /proc GPUs."""
    monkeypatch.setattr(gpu, "PROC_NVIDIA_GPUS", str(tmp_path / "no-proc"))

    def make(output: str | None, rc: int = 0) -> None:
        bindir = tmp_path / "smi-bin"
        if output is not None:
            script(bindir, "nvidia-smi", f"printf '%s\\n' '{output}'; exit {rc}")
        else:
            bindir.mkdir(exist_ok=True)
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/usr/bin{os.pathsep}/bin")

    return make


def test_gpu_detected_by_nvidia_smi(fake_smi):
    fake_smi("GPU 0: NVIDIA H200 (UUID: GPU-0f3c9a)")
    assert gpu.has_nvidia_gpu() and gpu.use_gpu("auto")
    ort = deps.Requirement("dlcghostort", ("dlcghostort", "onnxruntime-gpu"), "1.16")
    p = plan.plan([ort], gpu="auto")
    assert p.gpu and p.specs == ["onnxruntime-gpu>=1.16"]
    assert plan.plan([ort], gpu="cpu").specs == ["dlcghostort>=1.16"]


def test_no_gpu_when_nvidia_smi_lists_none_or_is_absent(fake_smi, tmp_path, monkeypatch):
    fake_smi("No devices were found", rc=6)
    assert not gpu.has_nvidia_gpu()
    assert gpu.use_gpu("gpu") and not gpu.use_gpu("cpu")
    fake_smi(None)
    assert not gpu.has_nvidia_gpu()
    if sys.platform.startswith("linux"):  # the driver's view without nvidia-smi
        (tmp_path / "proc" / "0000:01:00.0").mkdir(parents=True)
        monkeypatch.setattr(gpu, "PROC_NVIDIA_GPUS", str(tmp_path / "proc"))
        assert gpu.has_nvidia_gpu()
    with pytest.raises(InputError, match="auto, cpu, gpu"):
        gpu.use_gpu("cuda")


def test_torch_index(monkeypatch):
    monkeypatch.delenv(gpu.ENV_TORCH_INDEX, raising=False)
    assert gpu.index_args_for(["onnxruntime>=1.16"], gpu=False) == []
    cpu = gpu.index_args_for(["torch>=2.1", "onnx>=1.14"], gpu=False)
    assert cpu == (["--extra-index-url", gpu.TORCH_CPU_INDEX] if sys.platform.startswith("linux") else [])
    assert gpu.index_args_for(["torch>=2.1"], gpu=True) == []
    monkeypatch.setenv(gpu.ENV_TORCH_INDEX, "https://example.invalid/cu126")
    assert gpu.index_args_for(["torch"], gpu=True) == ["--extra-index-url", "https://example.invalid/cu126"]
    monkeypatch.setenv(gpu.ENV_TORCH_INDEX, "")
    assert gpu.index_args_for(["torch"], gpu=False) == []


# -- the torch index ------------------------------------------------------------------------------
def test_torch_index_dialog_then_environment_then_cpu_default(monkeypatch):
    monkeypatch.delenv(gpu.ENV_TORCH_INDEX, raising=False)
    linux = sys.platform.startswith("linux")
    assert gpu.torch_index(gpu=False) == (gpu.TORCH_CPU_INDEX if linux else "")
    assert gpu.torch_index(gpu=True) == ""
    assert gpu.torch_index(False, "https://mirror.example/whl/cpu/") == "https://mirror.example/whl/cpu"
    assert gpu.torch_index(False, "PyPI") == "" and gpu.torch_index(False, "  ") == gpu.torch_index(False)
    monkeypatch.setenv(gpu.ENV_TORCH_INDEX, "https://env.example/cu126")
    assert gpu.torch_index(True) == "https://env.example/cu126"
    assert gpu.torch_index(True, "https://dialog.example/cu128") == "https://dialog.example/cu128"  # the dialog wins
    assert gpu.index_args_for(["torch>=2.1"], True, "pypi") == []
    assert gpu.index_args_for(["onnx>=1.14"], False, "https://x.example") == []  # only for torch


@pytest.mark.parametrize(
    "name, version, cuda",
    [
        ("torch", "2.15.0+cu132", True),
        ("torch", "2.5.1+rocm6.2", True),
        ("nvidia-cublas-cu12", "12.4.5.8", True),
        ("nvidia_cudnn_cu13", "9.1", True),
        ("triton", "3.1.0", True),
        ("cuda-bindings", "13.0.1", True),
        ("torch", "2.15.0+cpu", False),
        ("torch", "2.15.0", False),  # PyPI's Windows/macOS torch: no label, no nvidia dependencies
        ("onnxruntime-gpu", "1.20", False),  # chosen explicitly with the GPU only
        ("numpy", "2.2.4", False),
    ],
)
def test_cuda_builds(name, version, cuda):
    assert gpu.cuda_builds([(name, version)]) == ([f"{name}=={version}"] if cuda else [])
