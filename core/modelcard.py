"""The model card: everything needed to run a trained model, stored inside the ``.onnx`` file.

Stored in ONNX ``metadata_props``: our full card as JSON under :data:`CARD_KEY`; in the fixed-size
``*_deepness.onnx`` copy that Train Model writes beside the model, also the keys the Deepness QGIS plugin
reads (``model_type``, ``class_names``, ``tile_size``, ``tiles_overlap``, ``resolution``,
``standardization_mean``, ``standardization_std``, ``seg_thresh``, ``seg_small_segment``), so Deepness
users can run our models and we can run theirs (:func:`card_from_metadata` builds a card from Deepness
keys alone, or from Deepness's defaults for a model without metadata).

Never imports torch; :func:`read_card` needs onnxruntime only, :func:`write_card` needs onnx.

Model I/O contract (what :mod:`core.inference` feeds and expects):
- input ``float32`` ``(B, C, H, W)`` (``layout == "BCHW"``), or ``(B, T, C, H, W)`` for time-series
  models (``layout == "BTCHW"``); a two-date model takes its dates stacked as channels
  ``(B, 2*C, H, W)`` (date 1 bands, then date 2 bands).
- values normalised with :func:`core.preprocessing.normalize.normalize` using ``mean``/``std`` (per input
  channel of one date; for pairs ``mean``/``std`` then ``mean2``/``std2``) and the card's ``normalization``
  kind (``"standard"`` z-scores, or ``"dynamicworld"``, Dynamic World's log/sigmoid squashing whose two
  per-band parameters sit in ``mean``/``std``); nodata pixels set to 0.
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
from .layout import InputLayout
from .raster.io import atomic_output

CARD_KEY = "deeplandcover_model_card"
#: The metadata keys Deepness reads (``deepness/processing/models/model_base.py``, Deepness 0.6).
DEEPNESS_KEYS = (
    "model_type",
    "class_names",
    "names",
    "resolution",
    "tile_size",
    "tiles_size",
    "tiles_overlap",
    "standardization_mean",
    "standardization_std",
    "seg_thresh",
    "seg_small_segment",
)
FORMAT = "deeplandcover-model-card"
#: The newest card version this plugin reads. A card is written with the lowest version that reads it
#: right: 1, or 2 when it needs a normalisation other than z-scores (which a version-1 reader would not
#: apply, and so must refuse: "update the plugin").
VERSION = 2


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
        normalization: ``"standard"`` (``(x - mean) / std``) or ``"dynamicworld"`` (Dynamic World's
            log/sigmoid squashing, ``mean``/``std`` holding its two per-band parameters), see
            :func:`core.preprocessing.normalize.normalize`.
        licence, attribution: of a model made from published weights (licence name; the notice and
            citation the licence asks to keep with it); empty for models trained here.
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
    normalization: str = "standard"
    licence: str = ""
    attribution: str = ""
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
        return InputLayout.of_card(self).in_channels

    def to_json(self) -> str:
        """The card as a JSON string (``format``/``version`` included; see :data:`VERSION`)."""
        return json.dumps({"format": FORMAT, "version": 1 if self.normalization == "standard" else 2, **asdict(self)})

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

    def deepness_unsupported(self) -> str | None:
        """Why the Deepness QGIS plugin cannot run this model, or None when it can.

        Deepness feeds one raster's first C bands as ``(B, C, H, W)``: no time series (``BTCHW``), no
        two-date change input, no spectral-index channels computed at inference, no stack of several
        sensors' rasters, only raw-value models (``input_scale == 1``) and only z-score normalisation.
        """
        if self.layout != "BCHW":
            return "it takes a time series (B, T, C, H, W); Deepness has no time-series input"
        if self.task != "segmentation":
            return "it takes two dates stacked as channels; Deepness runs one raster"
        if self.indices:
            return f"it computes spectral indices ({', '.join(self.indices)}) at inference, which Deepness does not"
        if len(self.training.get("sensor_bands") or []) > 1:
            return "it stacks the rasters of several sensors, and Deepness reads one raster"
        if self.architecture == "deepness" or self.input_scale != 1.0:
            return "it is already a Deepness model"
        if self.normalization != "standard":
            return f"it takes {self.normalization} normalisation, and Deepness standardises with mean and std only"
        return None

    def deepness_metadata(self) -> dict[str, str]:
        """The Deepness keys (values JSON-encoded as Deepness writes them); ``{}`` when Deepness cannot run it.

        Deepness (Aszkowski et al. 2023, see docs/references.md) divides the image by 255 before
        standardising, so our ``(x - m) / s`` is written as ``m / 255`` and ``s / 255``; resolution is in
        cm/pixel; ``tiles_overlap`` in percent of the tile. ``seg_thresh = 0`` (Deepness zeroes
        probabilities below it before its argmax; its default 0.5 leaves pixels with no class above 0.5
        as class 0) and ``seg_small_segment = 0`` (its median filter of ``2 * (n // 2) + 1`` pixels is
        then 1 pixel wide, i.e. off) make Deepness's class map the argmax that Classify Pixels gives.
        See :meth:`deepness_unsupported` for the models that get no keys.
        """
        if self.deepness_unsupported() is not None:
            return {}
        md: dict[str, str] = {
            "model_type": json.dumps("Segmentor"),
            "class_names": json.dumps({str(i): c.name for i, c in enumerate(self.classes)}),
            "tile_size": json.dumps(self.tile_size),
            "tiles_overlap": json.dumps(round(100 * self.overlap / max(1, self.tile_size))),
            "seg_thresh": json.dumps(0.0),
            "seg_small_segment": json.dumps(0),
            "standardization_mean": json.dumps([m / 255.0 for m in self.mean]),
            "standardization_std": json.dumps([s / 255.0 for s in self.std]),
        }
        if self.pixel_size and self.pixel_size_units == "metre":
            md["resolution"] = json.dumps(round(self.pixel_size[0] * 100, 3))
        return md

    def metadata_props(self, deepness: bool = False) -> dict[str, str]:
        """All ONNX metadata_props to store: the card, plus the Deepness keys with ``deepness``.

        Only a model with a fixed spatial input size loads in Deepness's dialog (it reads the input's
        height and width as integers), so only the fixed-size copy written by
        :func:`core.training.onnx_export.export_deepness_onnx` gets the Deepness keys.
        """
        return {CARD_KEY: self.to_json(), **(self.deepness_metadata() if deepness else {})}


def _jload(v: str | None, default: Any = None) -> Any:
    if v is None:
        return default
    try:
        return json.loads(v)
    except (json.JSONDecodeError, TypeError):
        return v


#: Deepness's defaults for what a model's metadata does not say (Deepness 0.6): 0..1 input, 15 % overlap.
DEEPNESS_SCALE = 1.0 / 255.0
DEEPNESS_OVERLAP_PCT = 15
#: Tile edge assumed when neither the metadata nor a fixed input shape gives one (pixels).
DEEPNESS_DEFAULT_TILE = 512


def card_from_metadata(
    meta: dict[str, str], input_shape: list[Any] | None = None, num_outputs: int | None = None
) -> ModelCard:
    """Build a card from ONNX metadata: ours when present, else the Deepness keys, else Deepness's defaults.

    A Deepness model's card has ``input_scale = 1/255`` and the Deepness ``standardization_mean``/``std``
    as they are (0..1 units): Deepness computes ``(x / 255 - mean) / std`` on the raster values. A model
    without any metadata (no card, no ``model_type``) is run as Deepness runs it: a segmentation model,
    input ``/ 255`` without standardisation, tile size from a fixed input shape (else 512 px), overlap
    15 %, the first C raster bands, classes named by output channel (``class 0`` ...). What was assumed
    is listed in ``card.training["assumed"]`` (Classify Pixels logs it as a warning).

    Args:
        meta: ``metadata_props`` as a str -> str dict.
        input_shape: the model input's shape (ints or symbolic names), for the channel count and a fixed
            tile size.
        num_outputs: number of output channels when known (models without class names).

    Raises:
        ModelFileError: our card is invalid, or the Deepness ``model_type`` is not ``Segmentor``.
    """
    if CARD_KEY in meta:
        return ModelCard.from_json(meta[CARD_KEY])
    assumed: list[str] = []
    if "model_type" not in meta:
        assumed.append("a segmentation model (no model_type)")
    mtype = str(_jload(meta.get("model_type"), "Segmentor")).capitalize()
    if mtype != "Segmentor":
        raise ModelFileError(
            f"Deepness model_type {mtype!r} is not supported; only 'Segmentor' models classify pixels."
        )
    classes = _deepness_classes(meta, num_outputs, assumed)
    fixed = input_shape is not None and len(input_shape) == 4
    channels = input_shape[1] if fixed and isinstance(input_shape[1], int) else 3
    if not (fixed and isinstance(input_shape[1], int)):
        assumed.append("3 input bands")
    tile = _jload(meta.get("tile_size", meta.get("tiles_size")))  # Deepness has written both spellings
    if not isinstance(tile, (int, float)):
        if fixed and isinstance(input_shape[-1], int):
            tile = input_shape[-1]
            assumed.append(f"tile {tile} px from the input shape")
        else:
            tile = DEEPNESS_DEFAULT_TILE
            assumed.append(f"tile {tile} px")
    tile = int(tile)
    if "tiles_overlap" not in meta:
        assumed.append(f"overlap {DEEPNESS_OVERLAP_PCT} %")
    overlap_pct = _jload(meta.get("tiles_overlap"), DEEPNESS_OVERLAP_PCT)
    if "standardization_mean" not in meta:
        assumed.append("input / 255 without standardisation")
    mean = _jload(meta.get("standardization_mean"), [0.0] * channels)
    std = _jload(meta.get("standardization_std"), [1.0] * channels)
    res = _jload(meta.get("resolution"))
    training: dict[str, Any] = {"source": "Deepness metadata" if "model_type" in meta else "no metadata"}
    if assumed:
        training["assumed"] = assumed
    return ModelCard(
        architecture="deepness",
        bands=[f"B{i + 1}" for i in range(channels)],
        mean=[float(m) for m in mean],
        std=[float(s) for s in std],
        classes=classes,
        tile_size=tile,
        overlap=int(round(tile * float(overlap_pct) / 100.0)),
        pixel_size=[float(res) / 100.0] * 2 if isinstance(res, (int, float)) else [],
        output="probabilities",
        input_scale=DEEPNESS_SCALE,
        training=training,
    )


def _deepness_classes(meta: dict[str, str], num_outputs: int | None, assumed: list[str]) -> list[ClassInfo]:
    """Classes from Deepness ``class_names`` (or ``names``; one dict, or a list with one per output), else by index."""
    names = _jload(meta.get("class_names", meta.get("names")), {})
    if isinstance(names, str):  # Python-style {0: 'a'}, which Deepness also reads
        import ast

        try:
            names = ast.literal_eval(names)
        except (ValueError, SyntaxError):
            names = {}
    if isinstance(names, list):  # one dict per output: use the first output
        names = names[0] if names else {}
    if not isinstance(names, dict):
        names = {}
    if not names:
        assumed.append("classes named by output channel")
        names = {str(i): f"class {i}" for i in range(num_outputs or 0)}
    return [
        ClassInfo(value=int(k), name=str(v), color=palette_color(i))
        for i, (k, v) in enumerate(sorted(names.items(), key=lambda kv: int(kv[0])))
    ]


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


def write_card(path: str | os.PathLike, card: ModelCard, *, deepness: bool = False) -> None:
    """Store ``card`` (and, with ``deepness``, the Deepness keys) in the metadata_props of the ONNX file at ``path``.

    Deepness keys already in the file are removed when ``deepness`` is False. Rewrites the file
    atomically. Needs the ``onnx`` package (a training dependency).
    """
    import onnx

    path = Path(path)
    model = onnx.load(str(path))
    props = card.metadata_props(deepness)
    keep = [p for p in model.metadata_props if p.key not in props and p.key not in DEEPNESS_KEYS]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)
    with atomic_output(path) as tmp:
        onnx.save(model, str(tmp))
