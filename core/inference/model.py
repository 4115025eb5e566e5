"""The loaded model: one :class:`InferenceModel` (session, card, input shape, batch policy, classes) and :func:`load_model`.

:func:`load_model` opens a model given as an ``.onnx`` file, a STAC Item with the MLM extension
(:func:`core.stac.model_from_item`) or a catalogue name (:mod:`core.inference.catalog`) on the requested
DEVICE (:func:`core.inference.session.open_session`), reads its card (:mod:`core.modelcard`: ours, or
built from Deepness's keys) and applies the run's overrides. :meth:`InferenceModel.tiling` resolves the
tile size and overlap, :meth:`InferenceModel.probe` runs it once on zero tiles (output channels, sigmoid
or softmax, whether batches > 1 run) and :meth:`InferenceModel.run` then turns normalised tiles into
class probabilities, whatever the model's output convention (ours: ``(B, K, H, W)`` probabilities or
logits; Deepness: also ``(B, 1, H, W)`` or ``(B, H, W)`` sigmoid outputs, fixed batch 1).

One object carries the session, the metadata and the shape queries through the engine, the change
models and the batch runner, as Deepness's ``ModelBase`` does (PUTvision/qgis-plugin-deepness,
``processing/models/model_base.py``). Never imports torch.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import DEFAULT_PALETTE, ClassInfo, palette_color
from ..errors import InputError, ModelFileError
from ..feedback import Feedback
from ..layout import InputLayout
from ..modelcard import ModelCard, card_from_session
from .bands import BandSource
from .catalog import resolve_model
from .session import open_session


class InferenceModel:
    """An open ONNX model with its card, ready to classify tiles (made by :func:`load_model`).

    Attributes:
        path: the ``.onnx`` file (a STAC Item or catalogue name resolved to it).
        session: the ``onnxruntime.InferenceSession``.
        card: the model card with the run's overrides applied (:func:`load_model`'s ``input_scale``).
        warnings: what the user should know about the model (GPU missing, Deepness defaults assumed,
            outputs ignored), in the order they arose.
        input_name, output_name: the graph's input and (first) output.
        sample_shape: one input sample ``([T,] C, tile, tile)`` as probed (:meth:`probe`), else None.
        run_batch: tiles per ``session.run`` (1 for fixed-batch models; set by :meth:`probe`).
        sigmoid: one output channel (or none): foreground probability (set by :meth:`probe`).
        classes: the classes of the output channels, in channel order (set by :meth:`probe`; sigmoid models
            get a background class, as in Deepness).
    """

    def __init__(self, path: Path, session: Any, card: ModelCard, warnings: Sequence[str] = ()) -> None:
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ModelFileError(f"The model has {len(inputs)} inputs; Classify Pixels runs single-input models.")
        self.path, self.session, self.card, self.warnings = Path(path), session, card, list(warnings)
        self.input_name, self.output_name = inputs[0].name, session.get_outputs()[0].name
        self.sample_shape: tuple[int, ...] | None = None
        self.run_batch = 1
        self.sigmoid = False
        self.classes: list[ClassInfo] = []

    @property
    def input_shape(self) -> list[Any]:
        """The graph's input shape: ints for fixed axes, names (or None) for dynamic ones, batch first."""
        return list(self.session.get_inputs()[0].shape)

    @property
    def fixed_tile(self) -> int | None:
        """The tile edge (pixels) the graph fixes, or None when its width is dynamic."""
        size = self.input_shape[-1]
        return size if isinstance(size, int) and size > 0 else None

    @property
    def provider(self) -> str:
        """The ONNX Runtime execution provider that runs the model (``"CPUExecutionProvider"``...)."""
        return self.session.get_providers()[0]

    def tiling(self, tile_size: int | None, overlap: int | None, warnings: list[str]) -> tuple[int, int]:
        """Tile size and overlap (pixels) from the arguments, the card, and a fixed model input size.

        Args:
            tile_size: asked tile edge (None/0: the card's). A model with a fixed input size uses its own
                (a warning in ``warnings`` when another was asked).
            overlap: asked overlap (None/negative: the card's, scaled to the tile size).
            warnings: appended to.

        Raises:
            InputError: a tile below 8 px, an overlap not in ``[0, tile)``.
        """
        card = self.card
        tile = int(tile_size) if tile_size and tile_size > 0 else int(card.tile_size)
        fixed = self.fixed_tile
        if fixed is not None and fixed != tile:
            if tile_size:
                warnings.append(f"The model only accepts {fixed} px tiles; tile size {tile_size} replaced by {fixed}.")
            tile = fixed
        if overlap is None or overlap < 0:
            ov = int(round(card.overlap * tile / card.tile_size)) if card.tile_size else tile // 4
        else:
            ov = int(overlap)
        if tile < 8:
            raise InputError(f"Tile size {tile} px is too small; use at least 64 px (the model's is {card.tile_size}).")
        if not 0 <= ov < tile:
            raise InputError(
                f"Overlap {ov} px must be smaller than the tile size {tile} px; use about a quarter of it."
            )
        return tile, ov

    def probe(self, sources: Sequence[BandSource], tile: int, batch: int) -> None:
        """Run the model once on zero tiles: output channels, sigmoid or not, whether batches > 1 run.

        Sets :attr:`sample_shape`, :attr:`run_batch`, :attr:`sigmoid` and :attr:`classes`.

        Args:
            sources: the model's bands per input raster (:func:`core.inference.bands.plan_sources`).
            tile: tile edge, pixels. batch: tiles per batch asked (at least 1).

        Raises:
            ModelFileError: the output size differs from the input size, or the output channels do not
                match the card's classes.
            InputError: the model cannot run on tiles of this size/channel count (message names the shape).
        """
        import onnxruntime as ort

        self.sample_shape = sample_shape(self.card, sources, tile)
        ishape = self.input_shape
        fixed_b = ishape[0] if isinstance(ishape[0], int) and ishape[0] > 0 else None
        tries = [1] if fixed_b == 1 or batch == 1 else [min(batch, 2), 1]
        quiet = ort.RunOptions()
        quiet.log_severity_level = 4  # a failing probe is expected for fixed-batch models: no ERROR line
        # A small probe unless the model fixes its input size: cheap, and still tells K and the batch policy.
        size = tile if isinstance(ishape[-1], int) or isinstance(ishape[-2], int) else min(tile, 64)
        shape = (*self.sample_shape[:-2], size, size)
        err: Exception | None = None
        for b in tries:
            try:
                y = self.session.run([self.output_name], {self.input_name: np.zeros((b, *shape), np.float32)}, quiet)[0]
            except Exception as e:  # shape errors come as onnxruntime's own exception types
                err = e
                continue
            if y.ndim not in (3, 4) or y.shape[-2:] != (size, size) or y.shape[0] != b:
                raise ModelFileError(
                    f"The model maps an input of shape {(b, *shape)} to an output of shape {tuple(y.shape)}; "
                    "Classify Pixels needs a (B, K, H, W) output of the input's size."
                )
            k_out = 1 if y.ndim == 3 else int(y.shape[1])
            self.run_batch, self.sigmoid = (batch if b > 1 else 1), k_out == 1
            self.classes = _output_classes(self.card, k_out)
            return
        raise _run_error(err, (1, *shape), ishape)

    def run(self, x: np.ndarray) -> np.ndarray:
        """``(N, [T,] C, t, t) float32`` -> probabilities ``(N, K, t, t) float32`` (run in :attr:`run_batch` chunks).

        Raises:
            InputError: ONNX Runtime refused the input (the message names its shape and the model's).
        """
        outs = []
        for i in range(0, len(x), self.run_batch):
            xb = np.ascontiguousarray(x[i : i + self.run_batch])
            try:
                y = self.session.run([self.output_name], {self.input_name: xb})[0]
            except Exception as e:  # e.g. a tile size the architecture cannot take
                raise _run_error(e, xb.shape, self.input_shape) from e
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


def load_model(
    model: str | os.PathLike,
    device: str = "auto",
    threads: int = 0,
    input_scale: float | None = None,
    *,
    feedback: Feedback | None = None,
) -> InferenceModel:
    """Open a model for inference: a file, a STAC Item or a catalogue name, on a device, with overrides.

    Args:
        model: ``.onnx`` file with our model card or Deepness metadata (or none: Deepness's defaults are
            assumed and warned about), a STAC Item (``.json``) with the MLM extension whose ``mlm:model``
            asset is one, or a catalogue name (``"dynamicworld"``, made on first use).
        device: ``auto``/``cpu``/``cuda``/``cuda:N``/``tensorrt`` (:func:`core.inference.session.resolve_providers`).
        threads: ONNX Runtime intra-op threads, 0 = all cores.
        input_scale: multiplier of raw raster values replacing the card's ``input_scale`` (None/0: the card's).
        feedback: log of a catalogue model's first-use build.

    Returns:
        The :class:`InferenceModel` (not yet probed: see :meth:`InferenceModel.probe`).

    Raises:
        ModelFileError: the file is missing or not a readable ONNX model, has no usable metadata, or
            several inputs; a STAC Item without a model asset.
        InputError: an unknown device.
        DependencyError: a catalogue model has to be made and torch or onnx is missing.
    """
    from ..stac import is_item, model_from_item

    path = resolve_model(model, feedback)
    path = model_from_item(path) if is_item(path) else Path(path)
    session, warn = open_session(path, device, threads)
    warnings = [warn] if warn else []
    card = _with_overrides(card_from_session(session), input_scale, warnings)
    outputs = session.get_outputs()
    if len(outputs) > 1:
        warnings.append(f"The model has {len(outputs)} outputs; only the first ({outputs[0].name}) is used.")
    return InferenceModel(path, session, card, warnings)


def _with_overrides(card: ModelCard, input_scale: float | None, warnings: list[str]) -> ModelCard:
    """``card`` with ``input_scale`` applied; a warning naming the defaults assumed for a model without metadata."""
    assumed = card.training.get("assumed") or []
    if input_scale:
        card = dataclasses.replace(card, input_scale=float(input_scale))
        assumed = [a for a in assumed if "255" not in a]
    if assumed:
        warnings.append(
            "The model's metadata does not say everything; Deepness's defaults were assumed: "
            + "; ".join(assumed)
            + ". Override them with INPUT_SCALE (raw value multiplier), TILE_SIZE, OVERLAP and BAND_MAPPING, "
            "or add the Deepness metadata keys to the model."
        )
    return card


def sample_shape(card: ModelCard, sources: Sequence[BandSource], tile: int) -> tuple[int, ...]:
    """Shape of one model input tile without the batch axis: ``(T, C, tile, tile)`` or ``(C, tile, tile)``.

    The channels are the matched bands of the sources plus the card's spectral indices, per date
    (:class:`core.layout.InputLayout`, the kind from the card).
    """
    layout = InputLayout.of_card(card, dates=len(sources))
    counts = [len(s.bands) for s in sources]  # the matched bands (a Deepness card may name none)
    bands = counts[0] if layout.kind == "sequence" else sum(counts) // layout.dates
    return dataclasses.replace(layout, bands=bands).input_shape(tile)


def _softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


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


def _run_error(err: Exception | None, shape: tuple[int, ...], model_shape: Any) -> InputError:
    msg = str(err).strip().splitlines()[0][:300] if err else ""
    return InputError(
        f"The model cannot run on input tiles of shape {shape} (model input {model_shape}): {msg}. "
        "Check the band count and use a TILE_SIZE the model accepts (a multiple of 32 for U-Nets)."
    )
