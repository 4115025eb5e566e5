"""The model card: everything needed to run a trained model, stored inside the ``.onnx`` file.

Stored in ONNX ``metadata_props``: our full card as JSON under :data:`CARD_KEY`, plus the keys the
Deepness QGIS plugin reads (``model_type``, ``class_names``, ``tile_size``, ``tiles_overlap``,
``resolution``, ``standardization_mean``, ``standardization_std``) so Deepness users can run our
models and we can run theirs (:func:`card_from_metadata` builds a card from Deepness keys alone).

Never imports torch; :func:`read_card` needs onnxruntime only, :func:`write_card` needs onnx.

Model I/O contract (what :mod:`core.inference` feeds and expects):
- input ``float32`` ``(B, C, H, W)`` (``layout == "BCHW"``), or ``(B, T, C, H, W)`` for time-series
  models (``layout == "BTCHW"``); a two-date model takes its dates stacked as channels
  ``(B, 2*C, H, W)`` (date 1 bands, then date 2 bands).
- values normalised with :func:`core.raster.normalize` using ``mean``/``std`` (per input channel
  of one date; for pairs ``mean``/``std`` then ``mean2``/``std2``); nodata pixels set to 0.
- output ``float32`` ``(B, K, H, W)``: class probabilities when ``output == "probabilities"``
  (softmax applied inside the graph), logits when ``"logits"``; channel ``k`` is ``classes[k]``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .classes import ClassInfo, palette_color
from .errors import ModelFileError
from .raster.io import atomic_output

CARD_KEY = "deeplandcover_model_card"
FORMAT = "deeplandcover-model-card"
VERSION = 1


@dataclass
class ModelCard:
    """How to run a model and what it predicts.

    Attributes:
        architecture: registry name (``"unet"``, ``"deeplabv3plus"``, ``"unet_convlstm"``,
            ``"unet_early_fusion"``) or ``"deepness"`` for foreign models.
        task: ``"segmentation"`` (one date or a sequence) or ``"change"`` (two dates).
        bands: input band names of one date, in model channel order.
        mean, std: per-band normalisation (raster units), one per entry of ``bands``.
        bands2, mean2, std2: second date of a change model (empty otherwise).
        classes: output channel k predicts ``classes[k].value``.
        layout: ``"BCHW"`` or ``"BTCHW"``.
        time_steps: T of a sequence model (0 otherwise); ``dates`` the training dates (ISO).
        tile_size: training/inference tile edge, pixels. ``overlap``: suggested overlap, pixels.
        pixel_size: ``[x, y]`` of the training data in ``pixel_size_units``.
        output: ``"probabilities"`` or ``"logits"``.
        ignore_value: label value ignored in training (also the class raster's nodata).
        input_scale: multiply raw pixel values by this before normalising (1.0 for our models;
            Deepness models expect 0..1 images, i.e. 1/255 of 8-bit data).
        indices: spectral indices appended as extra channels (``["NDVI"]``), computed at inference.
        arch_params: constructor arguments of the architecture.
        training: training data, parameters and validation metrics (free-form).
        versions: library versions used to train and export.
    """

    architecture: str
    bands: list[str]
    mean: list[float]
    std: list[float]
    classes: list[ClassInfo]
    task: Literal["segmentation", "change"] = "segmentation"
    layout: Literal["BCHW", "BTCHW"] = "BCHW"
    bands2: list[str] = field(default_factory=list)
    mean2: list[float] = field(default_factory=list)
    std2: list[float] = field(default_factory=list)
    time_steps: int = 0
    dates: list[str] = field(default_factory=list)
    tile_size: int = 256
    overlap: int = 64
    pixel_size: list[float] = field(default_factory=list)
    pixel_size_units: str = "metre"
    crs_wkt: str = ""
    output: Literal["probabilities", "logits"] = "probabilities"
    ignore_value: int = 255
    input_scale: float = 1.0
    indices: list[str] = field(default_factory=list)
    arch_params: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def num_classes(self) -> int:
        """K, the number of output channels."""
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        """Channels of one model input date (bands + indices; both dates for a change model)."""
        c = len(self.bands) + len(self.indices)
        return c * 2 if self.task == "change" else c

    def to_json(self) -> str:
        """The card as a JSON string (``format``/``version`` included)."""
        return json.dumps({"format": FORMAT, "version": VERSION, **asdict(self)})

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parse :meth:`to_json` output.

        Raises:
            ModelFileError: not valid JSON, wrong format, or a newer card version.
        """
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ModelFileError(f"The model card is not valid JSON ({e}).") from e
        if d.get("format") != FORMAT:
            raise ModelFileError(f"Metadata key {CARD_KEY} does not hold a Deep Land Cover model card.")
        if int(d.get("version", 0)) > VERSION:
            raise ModelFileError(f"Model card version {d['version']} is newer than this plugin; update the plugin.")
        d.pop("format"), d.pop("version")
        d["classes"] = [ClassInfo(**c) for c in d.get("classes", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def deepness_metadata(self) -> dict[str, str]:
        """The Deepness keys (values JSON-encoded as Deepness writes them).

        Deepness scales 8-bit images to 0..1 before standardising, so our ``(x - m) / s`` is written
        as ``m / 255`` and ``s / 255``. Resolution is in cm/pixel.
        """
        md: dict[str, str] = {
            "model_type": json.dumps("Segmentor"),
            "class_names": json.dumps({str(i): c.name for i, c in enumerate(self.classes)}),
            "tile_size": json.dumps(self.tile_size),
            "tiles_overlap": json.dumps(round(100 * self.overlap / max(1, self.tile_size))),
        }
        if self.pixel_size and self.pixel_size_units == "metre":
            md["resolution"] = json.dumps(round(self.pixel_size[0] * 100, 3))
        if self.task == "segmentation" and self.layout == "BCHW" and not self.indices:
            md["standardization_mean"] = json.dumps([m / 255.0 / self.input_scale for m in self.mean])
            md["standardization_std"] = json.dumps([s / 255.0 / self.input_scale for s in self.std])
        return md

    def metadata_props(self) -> dict[str, str]:
        """All ONNX metadata_props to store: the card plus the Deepness keys."""
        return {CARD_KEY: self.to_json(), **self.deepness_metadata()}


def _jload(v: str | None, default: Any = None) -> Any:
    if v is None:
        return default
    try:
        return json.loads(v)
    except (json.JSONDecodeError, TypeError):
        return v


def card_from_metadata(
    meta: dict[str, str], input_shape: list[Any] | None = None, num_outputs: int | None = None
) -> ModelCard:
    """Build a card from ONNX metadata: ours when present, else the Deepness keys.

    Args:
        meta: ``metadata_props`` as a str -> str dict.
        input_shape: the model input's shape (ints or symbolic names), used for Deepness models
            to get the channel count and a fixed tile size.
        num_outputs: number of output channels when known (Deepness models without class_names).

    Raises:
        ModelFileError: neither our card nor a Deepness ``model_type`` is present, or the Deepness
            model is not a segmentation model.
    """
    if CARD_KEY in meta:
        return ModelCard.from_json(meta[CARD_KEY])
    if "model_type" not in meta:
        raise ModelFileError(
            "The model has no Deep Land Cover model card and no Deepness metadata (model_type, class_names): "
            "the plugin cannot know its bands, normalisation or classes. Train it with Train Model, or add the "
            "Deepness metadata keys to the ONNX file."
        )
    mtype = _jload(meta["model_type"])
    if mtype != "Segmentor":
        raise ModelFileError(
            f"Deepness model_type {mtype!r} is not supported; only 'Segmentor' models classify pixels."
        )
    names = _jload(meta.get("class_names"), {})
    if isinstance(names, list):  # one dict per output: use the first output
        names = names[0] if names else {}
    if not names and num_outputs:
        names = {str(i): f"class {i}" for i in range(num_outputs)}
    classes = [
        ClassInfo(value=int(k), name=str(v), color=palette_color(i))
        for i, (k, v) in enumerate(sorted(names.items(), key=lambda kv: int(kv[0])))
    ]
    channels = input_shape[1] if input_shape and isinstance(input_shape[1], int) else 3
    tile = _jload(meta.get("tile_size", meta.get("tiles_size")))  # Deepness has written both spellings
    if not isinstance(tile, int) and input_shape and isinstance(input_shape[-1], int):
        tile = input_shape[-1]
    tile = int(tile) if isinstance(tile, (int, float)) else 512
    overlap_pct = _jload(meta.get("tiles_overlap"), 15)
    mean = _jload(meta.get("standardization_mean"), [0.0] * channels)
    std = _jload(meta.get("standardization_std"), [1.0] * channels)
    res = _jload(meta.get("resolution"))
    return ModelCard(
        architecture="deepness",
        bands=[f"B{i + 1}" for i in range(channels)],
        # Deepness: x/255 then (x - m)/s  ==  (x - 255 m) / (255 s) on raw 8-bit values.
        mean=[float(m) * 255.0 for m in mean],
        std=[float(s) * 255.0 for s in std],
        classes=classes,
        tile_size=tile,
        overlap=int(round(tile * float(overlap_pct) / 100.0)),
        pixel_size=[float(res) / 100.0] * 2 if isinstance(res, (int, float)) else [],
        output="probabilities",
        training={"source": "Deepness metadata"},
    )


def read_card(path: str | os.PathLike) -> ModelCard:
    """Read the card of an ONNX model without running it (onnxruntime only).

    Raises:
        ModelFileError: the file is missing, not a valid ONNX model, or has no usable metadata.
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"Model file {path} does not exist.")
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise ModelFileError(f"{path.name} is not a readable ONNX model ({str(e).splitlines()[0][:200]}).") from e
    return card_from_session(sess)


def card_from_session(sess) -> ModelCard:
    """The card of an open ``onnxruntime.InferenceSession`` (ours, or built from Deepness keys).

    Raises:
        ModelFileError: no usable metadata (see :func:`card_from_metadata`).
    """
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    out_shape = sess.get_outputs()[0].shape
    k = out_shape[1] if len(out_shape) == 4 and isinstance(out_shape[1], int) else None
    return card_from_metadata(meta, sess.get_inputs()[0].shape, k)


def write_card(path: str | os.PathLike, card: ModelCard) -> None:
    """Store ``card`` (and the Deepness keys) in the metadata_props of the ONNX file at ``path``.

    Rewrites the file atomically. Needs the ``onnx`` package (a training dependency).
    """
    import onnx

    path = Path(path)
    model = onnx.load(str(path))
    props = card.metadata_props()
    keep = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)
    with atomic_output(path) as tmp:
        onnx.save(model, str(tmp))
