"""The GPU: whether an NVIDIA GPU is there, and which builds and package index that choice means.

``onnxruntime-gpu`` replaces ``onnxruntime`` when the GPU is chosen (see :func:`.plan.plan`); torch
comes from PyTorch's CPU index on Linux without a GPU (:func:`index_args_for`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from typing import Sequence

from ..errors import InputError
from .names import canonical_name

#: The GPU choices offered by the Processing algorithm, see :func:`use_gpu`.
GPU_CHOICES = ("auto", "cpu", "gpu")
#: Linux: one folder per NVIDIA GPU (the kernel driver's view; works without nvidia-smi).
PROC_NVIDIA_GPUS = "/proc/driver/nvidia/gpus"
#: Environment variable: package index for torch (``""`` = PyPI only), see :func:`index_args_for`.
ENV_TORCH_INDEX = "DLC_TORCH_INDEX_URL"
#: PyTorch's CPU-only wheels: on Linux PyPI's torch pulls ~3 GB of CUDA libraries even without a GPU.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

_WIN = sys.platform.startswith("win")
_NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)


def has_nvidia_gpu() -> bool:
    """True when an NVIDIA GPU is present: ``nvidia-smi -L`` lists one, or (Linux) the driver
    shows one under ``/proc/driver/nvidia/gpus``."""
    smi = shutil.which("nvidia-smi")
    if smi is None and _WIN:
        legacy = os.path.join(
            os.environ.get("ProgramFiles", r"C:\Program Files"), "NVIDIA Corporation", "NVSMI", "nvidia-smi.exe"
        )
        smi = legacy if os.path.isfile(legacy) else None
    if smi:
        try:
            res = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, creationflags=_NO_WINDOW)
            if res.returncode == 0 and any(line.startswith("GPU ") for line in res.stdout.splitlines()):
                return True
        except (OSError, subprocess.SubprocessError):
            pass
    if sys.platform.startswith("linux"):
        try:
            with os.scandir(PROC_NVIDIA_GPUS) as entries:
                return any(True for _ in entries)
        except OSError:
            return False
    return False


def use_gpu(choice: str = "auto") -> bool:
    """Whether to install the GPU builds: ``"auto"`` (:func:`has_nvidia_gpu`), ``"gpu"`` or ``"cpu"``.

    Raises:
        InputError: ``choice`` is none of those.
    """
    if choice not in GPU_CHOICES:
        raise InputError(f"GPU choice must be one of {', '.join(GPU_CHOICES)}, not {choice!r}.")
    if choice == "auto":
        return has_nvidia_gpu()
    return choice == "gpu"


def index_args_for(specs: Sequence[str], gpu: bool) -> list[str]:
    """Extra pip index options for ``specs``: only for torch, whose PyPI builds fit few users.

    ``$DLC_TORCH_INDEX_URL`` when set (``""``: PyPI only), e.g. a CUDA index of PyTorch for GPU
    training on Windows (PyPI's Windows torch is CPU-only). Otherwise, on Linux without a GPU,
    PyTorch's CPU index (:data:`TORCH_CPU_INDEX`), so that pip does not download the CUDA libraries.
    """
    if not any(canonical_name(re.split(r"[\s<>=!~;\[(@]", s, maxsplit=1)[0]) == "torch" for s in specs):
        return []
    url = os.environ.get(ENV_TORCH_INDEX)
    if url is None:
        url = TORCH_CPU_INDEX if sys.platform.startswith("linux") and not gpu else ""
    return ["--extra-index-url", url] if url else []
