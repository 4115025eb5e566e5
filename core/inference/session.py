"""ONNX Runtime sessions for Classify Pixels: execution providers and session options.

:func:`open_session` opens a model tuned for throughput on the requested DEVICE
(:func:`resolve_providers`); :func:`core.inference.model.load_model` wraps the session, the card and the
shape queries into one :class:`core.inference.model.InferenceModel`. Never imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelFileError


def resolve_providers(device: str) -> tuple[list[Any], str | None]:
    """ONNX Runtime providers for a DEVICE string.

    Args:
        device: ``"auto"`` (CUDA when onnxruntime-gpu provides it, else CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:N"`` (GPU number N), ``"tensorrt"``/``"tensorrt:N"`` (TensorRT, then CUDA).

    Returns:
        (providers for ``InferenceSession``, a warning when a GPU was asked for but is missing).

    Raises:
        InputError: unknown device string.
    """
    import onnxruntime as ort

    avail = ort.get_available_providers()
    dev = (device or "auto").strip().lower()
    kind, _, idx = dev.partition(":")
    if kind == "gpu":
        kind = "cuda"
    if kind not in ("auto", "cpu", "cuda", "tensorrt") or (idx and not idx.isdigit()):
        raise InputError(f"Unknown DEVICE {device!r}: use auto, cpu, cuda, cuda:N (N = GPU number) or tensorrt.")
    if kind == "cpu":
        return ["CPUExecutionProvider"], None
    opts = {"device_id": int(idx or 0)}
    gpu: list[Any] = []
    if kind == "tensorrt" and "TensorrtExecutionProvider" in avail:
        gpu.append(("TensorrtExecutionProvider", opts))
    if "CUDAExecutionProvider" in avail:
        gpu.append(("CUDAExecutionProvider", opts))
    warning = None
    if not gpu and kind != "auto":
        warning = (
            f"DEVICE {device} asks for a GPU but this onnxruntime offers only {avail}; running on the CPU. "
            "Install onnxruntime-gpu (with a matching CUDA) to use the GPU."
        )
    return gpu + ["CPUExecutionProvider"], warning


def open_session(model: str | os.PathLike, device: str = "auto", threads: int = 0):
    """Open an ONNX Runtime session tuned for throughput.

    Graph optimisation ``ORT_ENABLE_ALL``, ``intra_op_num_threads = threads`` (0: all cores),
    sequential execution.

    Returns:
        ``(session, warning or None)``.

    Raises:
        ModelFileError: the file is missing or not a readable ONNX model.
    """
    import onnxruntime as ort

    path = Path(model)
    if not path.is_file():
        raise ModelFileError(f"Model file {path} does not exist; choose the .onnx file written by Train Model.")
    providers, warning = resolve_providers(device)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = int(threads) if threads and threads > 0 else (os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    # Idle intra-op threads must not spin: the reader and writer threads need those cores meanwhile.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        sess = ort.InferenceSession(str(path), so, providers=providers)
    except Exception as e:  # onnxruntime raises Fail/InvalidProtobuf/NoSuchFile of its own
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise ModelFileError(
            f"{path.name} is not a readable ONNX model ({first}). Re-export it (Train Model writes .onnx files) "
            "or check that the download is complete."
        ) from e
    return sess, warning
