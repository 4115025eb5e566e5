"""The GPU: whether an NVIDIA GPU is there, and which builds and package index that choice means.

``onnxruntime-gpu`` replaces ``onnxruntime`` when the GPU is chosen (see :func:`.plan.plan`); torch
comes from PyTorch's CPU index on Linux without a GPU (:func:`torch_index`), and a resolution that
would still bring the CUDA build (:func:`cuda_builds`) is refused before anything is downloaded
(:func:`cuda_refusal`, raised by :func:`.install.install`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Sequence

from ..core.errors import InputError
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


#: Values of the torch index setting that mean "no extra index: PyPI (or pip's configured index) only".
PYPI_ONLY = ("pypi", "none", "-")

#: Distributions that only a CUDA (or ROCm) build of torch brings: ~3 GB that a CPU install must not download.
_CUDA_NAMES = re.compile(r"^(nvidia-.+|triton|pytorch-triton(-rocm)?|cuda-(bindings|python|pathfinder|toolkit))$")
#: Local version labels of GPU builds of torch: ``2.5.1+cu124``, ``2.5.1+rocm6.2``.
_CUDA_LOCAL = re.compile(r"\+(cu\d+|rocm[\d.]+)$")


def _mentions_torch(specs: Sequence[str]) -> bool:
    return any(canonical_name(re.split(r"[\s<>=!~;\[(@]", s, maxsplit=1)[0]) == "torch" for s in specs)


def torch_index(gpu: bool, setting: str | None = None) -> str:
    """The extra package index torch is installed from (``""``: none, PyPI or pip's configured index only).

    Args:
        gpu: whether the GPU builds were chosen (:func:`use_gpu`).
        setting: the installer's *Torch package index* option: a URL, ``"pypi"`` (no extra index), or
            empty/None for the default below.

    The default is ``$DLC_TORCH_INDEX_URL`` when that is set (``""``: PyPI only), else, on Linux when the
    CPU is chosen, PyTorch's CPU index (:data:`TORCH_CPU_INDEX`): PyPI's Linux torch is the CUDA build,
    which pulls ~3 GB of NVIDIA libraries even where there is no GPU. PyPI's Windows and macOS torch
    is the CPU build already; for GPU training on Windows, give one of PyTorch's CUDA indexes.
    """
    value = (setting or "").strip()
    if value:
        return "" if value.lower() in PYPI_ONLY else value.rstrip("/")
    env = os.environ.get(ENV_TORCH_INDEX)
    if env is not None:
        return env.strip().rstrip("/")
    return TORCH_CPU_INDEX if sys.platform.startswith("linux") and not gpu else ""


def index_args_for(specs: Sequence[str], gpu: bool, setting: str | None = None) -> list[str]:
    """Extra pip index options for ``specs``: ``--extra-index-url`` :func:`torch_index` when torch is
    among them (no other package needs one), else none."""
    if not _mentions_torch(specs):
        return []
    url = torch_index(gpu, setting)
    return ["--extra-index-url", url] if url else []


def cuda_builds(items: Sequence[tuple[str, str]]) -> list[str]:
    """The GPU-only distributions among ``(name, version)`` pairs (pip's resolution), as ``name==version``.

    They are the NVIDIA CUDA libraries (``nvidia-*``), triton, the CUDA Python bindings, and any build
    whose local version label names CUDA or ROCm (``torch==2.5.1+cu124``): what PyPI's Linux torch pulls in.
    """
    return [
        f"{n}=={v}" for n, v in items if _CUDA_NAMES.match(canonical_name(n)) or _CUDA_LOCAL.search((v or "").strip())
    ]


@dataclass(frozen=True)
class BuildChoice:
    """The GPU choice of an install and what it implies for torch: the words of the messages that stop it.

    Attributes:
        choice: ``"auto"``, ``"cpu"`` or ``"gpu"`` (:data:`GPU_CHOICES`).
        gpu: whether the GPU builds were chosen (:func:`use_gpu` of ``choice``).
        torch_index: the extra index torch comes from (:func:`torch_index`; ``""``: none).
    """

    choice: str = "auto"
    gpu: bool = False
    torch_index: str = ""

    def text(self) -> str:
        """The choice as the dialog words it: ``GPU: CPU only``, ``GPU: Auto (no NVIDIA GPU found)``."""
        if self.choice == "auto":
            return "GPU: Auto (" + ("an NVIDIA GPU was found)" if self.gpu else "no NVIDIA GPU found)")
        return "GPU: CPU only" if self.choice == "cpu" else "GPU: NVIDIA GPU"

    def index_text(self) -> str:
        """``torch package index: <url>`` (or ``none, PyPI only``), for the log."""
        return f"torch package index: {self.torch_index or 'none (PyPI only)'}"

    def cuda_refusal(self, cuda: Sequence[str], downloaded: bool = False) -> str:
        """Why an install whose resolution holds the CUDA builds ``cuda`` (:func:`cuda_builds`) stops
        (``downloaded``: pip older than 22.2 had to download them to know; they are deleted)."""
        torch = [c for c in cuda if canonical_name(c.split("==")[0]) == "torch"]
        others = sorted(c.split("==")[0] for c in cuda if c not in torch)
        what = (torch[0] if torch else "a CUDA build") + (
            f" with {len(others)} CUDA/triton packages ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''})"
            if others
            else ""
        )
        where = (
            f"the torch package index {self.torch_index} has no CPU build that fits, so pip took PyPI's"
            if self.torch_index
            else "no torch package index is set, so pip took PyPI's torch, which on Linux is the CUDA build"
        )
        return (
            f"Stopped before {'installing' if downloaded else 'downloading'} anything: pip would install {what}, "
            "about 3 GB, although "
            f"{self.text()} was chosen: {where}. Set 'Torch package index' (Advanced) to an index of CPU "
            f"builds this machine can reach ({TORCH_CPU_INDEX} or a mirror of it), or add a torch version "
            "that index has to 'Additional packages' (torch==2.X.Y), or choose 'GPU: NVIDIA GPU' to install "
            "the CUDA build on purpose."
        )

    def unreachable(self, url: str, reason: str) -> str:
        """Why an install stops when the package index ``url`` cannot be reached (``reason``: what failed)."""
        pypi = (
            " PyPI's Linux torch is the CUDA build (about 3 GB): with 'GPU: NVIDIA GPU' and the index set to "
            "'pypi' it is installed from there."
            if sys.platform.startswith("linux") and not self.gpu
            else " Set it to 'pypi' to install torch from PyPI (or pip's configured index)."
        )
        return (
            f"Could not reach the torch package index {url} ({reason}); stopped before running pip, nothing was "
            f"downloaded ({self.text()}). Check the network connection and the proxy (pip and this check read "
            f"HTTPS_PROXY; pip also its pip.conf/pip.ini), or set 'Torch package index' (Advanced) to a mirror "
            f"that this machine can reach.{pypi}"
        )
