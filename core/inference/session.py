"""ONNX Runtime sessions for Classify Pixels: execution providers, session options, model probing.

:func:`open_session` opens a model tuned for throughput on the requested DEVICE;
:func:`prepare_model` probes it once (output channels, sigmoid or softmax, whether batches > 1 run)
and returns a :class:`PreparedModel` that turns normalised tiles into class probabilities, whatever
the model's output convention (ours: ``(B, K, H, W)`` probabilities or logits; Deepness: also
``(B, 1, H, W)`` or ``(B, H, W)`` sigmoid outputs, fixed batch 1). Never imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import DEFAULT_PALETTE, ClassInfo, palette_color
from ..errors import InputError, ModelFileError
from ..modelcard import ModelCard


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


def _softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@dataclass
class PreparedModel:
    """A session plus what a probe run told about its input and output (see :func:`prepare_model`)."""

    sess: Any
    card: ModelCard
    input_name: str
    output_name: str
    tile: int
    run_batch: int
    sigmoid: bool  # one output channel (or none): foreground probability
    classes: list[ClassInfo]

    def run(self, x: np.ndarray) -> np.ndarray:
        """``(N, [T,] C, t, t) float32`` -> probabilities ``(N, K, t, t) float32`` (run in chunks)."""
        outs = []
        for i in range(0, len(x), self.run_batch):
            xb = np.ascontiguousarray(x[i : i + self.run_batch])
            try:
                y = self.sess.run([self.output_name], {self.input_name: xb})[0]
            except Exception as e:  # e.g. a tile size the architecture cannot take
                raise _run_error(e, xb.shape, self.sess.get_inputs()[0].shape) from e
            outs.append(self._to_probs(np.asarray(y, dtype=np.float32)))
        return outs[0] if len(outs) == 1 else np.concatenate(outs)

    def _to_probs(self, y: np.ndarray) -> np.ndarray:
        if y.ndim == 3:
            y = y[:, None]
        if y.shape[1] == 1:
            p = y[:, 0]
            if self.card.output == "logits":
                p = 1.0 / (1.0 + np.exp(-p))
            return np.stack([1.0 - p, p], axis=1).astype(np.float32)
        return _softmax(y).astype(np.float32) if self.card.output == "logits" else y


def _output_classes(card: ModelCard, k_out: int) -> list[ClassInfo]:
    """Classes of the output channels (sigmoid models get a background class, as in Deepness)."""
    if k_out == 1:
        if len(card.classes) == 2:
            return list(card.classes)
        name = card.classes[0].name if card.classes else "foreground"
        color = card.classes[0].color if card.classes else DEFAULT_PALETTE[1]
        return [ClassInfo(0, "background", "#000000"), ClassInfo(1, name, color)]
    if len(card.classes) == k_out:
        return list(card.classes)
    if card.architecture == "deepness":
        names = {c.value: c.name for c in card.classes}
        return [ClassInfo(k, names.get(k, f"class {k}"), palette_color(k)) for k in range(k_out)]
    raise ModelFileError(
        f"The model outputs {k_out} channels but its card lists {len(card.classes)} classes; "
        "re-export the model with Train Model."
    )


def prepare_model(sess, card: ModelCard, tile: int, batch: int, x_shape: tuple[int, ...]) -> PreparedModel:
    """Probe the model on zero tiles: output channels, sigmoid or not, whether batches > 1 run.

    Args:
        x_shape: one sample's input shape ``([T,] C, tile, tile)``.

    Raises:
        ModelFileError: the model has several inputs, or its output size differs from its input size.
        InputError: the model cannot run on tiles of this size/channel count (message names the shape).
    """
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise ModelFileError(f"The model has {len(inputs)} inputs; Classify Pixels runs single-input models.")
    ishape = inputs[0].shape
    fixed_b = ishape[0] if isinstance(ishape[0], int) and ishape[0] > 0 else None
    out_name = sess.get_outputs()[0].name
    tries = [1] if fixed_b == 1 or batch == 1 else [min(batch, 2), 1]
    err: Exception | None = None
    import onnxruntime as ort

    quiet = ort.RunOptions()
    quiet.log_severity_level = 4  # a failing probe is expected for fixed-batch models: no ERROR line
    # A small probe unless the model fixes its input size: cheap, and still tells K and the batch policy.
    size = tile if isinstance(ishape[-1], int) or isinstance(ishape[-2], int) else min(tile, 64)
    shape = (*x_shape[:-2], size, size)
    for b in tries:
        try:
            y = sess.run([out_name], {inputs[0].name: np.zeros((b, *shape), np.float32)}, quiet)[0]
        except Exception as e:  # shape errors come as onnxruntime's own exception types
            err = e
            continue
        if y.ndim not in (3, 4) or y.shape[-2:] != (size, size) or y.shape[0] != b:
            raise ModelFileError(
                f"The model maps an input of shape {(b, *shape)} to an output of shape {tuple(y.shape)}; "
                "Classify Pixels needs a (B, K, H, W) output of the input's size."
            )
        k_out = 1 if y.ndim == 3 else int(y.shape[1])
        m = PreparedModel(
            sess, card, inputs[0].name, out_name, tile, batch if b > 1 else 1, k_out == 1, _output_classes(card, k_out)
        )
        return m
    raise _run_error(err, (1, *shape), ishape)


def _run_error(err: Exception | None, shape: tuple[int, ...], model_shape: Any) -> InputError:
    msg = str(err).strip().splitlines()[0][:300] if err else ""
    return InputError(
        f"The model cannot run on input tiles of shape {shape} (model input {model_shape}): {msg}. "
        "Check the band count and use a TILE_SIZE the model accepts (a multiple of 32 for U-Nets)."
    )
