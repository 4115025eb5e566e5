"""A STAC Item with the Machine Learning Model (MLM) extension for a trained model, and the way back.

:func:`write_mlm_item` describes an ONNX model with its card (:mod:`core.modelcard`) as a STAC 1.1 Item
with the MLM extension (STAC community extension "Machine Learning Model", Charette, F. et al.,
https://github.com/stac-extensions/mlm; the version in :data:`MLM_SCHEMA`): ``mlm:name``,
``mlm:architecture``, ``mlm:tasks``, ``mlm:framework``, ``mlm:input`` (bands, shape, dimension order,
data type and per-band ``z-score`` value scaling), ``mlm:output`` (the classes as
``classification:classes``) and the ``model`` asset with role ``mlm:model`` and ``mlm:artifact_type``.
Train Model writes it beside ``model.onnx`` (:func:`core.training.onnx_export.export_onnx`);
Classify Pixels accepts the Item as its MODEL (:func:`model_from_item`). The geometry is null: a card
does not record the training footprint. Never imports torch; no third-party import.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ModelFileError
from .modelcard import ModelCard
from .raster.io import atomic_output

#: The MLM extension schema this module writes (the version ``stac-model`` 0.7 validates).
MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.6.0/schema.json"
#: The other STAC extensions the Item uses: classification (the classes), file (size).
CLASSIFICATION_SCHEMA = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"
FILE_SCHEMA = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
#: Media type of an ONNX model asset, in the MLM convention ``application/octet-stream; framework=...``.
ONNX_MEDIA_TYPE = "application/octet-stream; framework=onnx; profile=onnx"
#: Suffix of the Item file written beside a model: ``model.onnx`` -> ``model.stac-item.json``.
ITEM_SUFFIX = ".stac-item.json"


def item_path(onnx_path: str | os.PathLike) -> Path:
    """Where :func:`write_mlm_item` writes the Item of ``onnx_path`` by default (``<stem>.stac-item.json``)."""
    p = Path(onnx_path)
    return p.with_name(p.stem + ITEM_SUFFIX)


def _input(card: ModelCard) -> dict[str, Any]:
    """The ``mlm:input`` entry: bands (both dates of a change model, then index channels), shape, scaling."""
    t = card.tile_size
    if card.task == "change":
        bands = [f"{b}_date1" for b in card.bands] + [f"{b}_date2" for b in (card.bands2 or card.bands)]
        scaling = list(zip(card.mean, card.std)) + list(zip(card.mean2 or card.mean, card.std2 or card.std))
    else:
        bands, scaling = list(card.bands), list(zip(card.mean, card.std))
    bands += list(card.indices)
    value_scaling: list[dict[str, Any] | None] = [
        {"type": "z-score", "mean": float(m), "stddev": float(s)} for m, s in scaling
    ] + [None] * len(card.indices)
    if card.layout == "BTCHW":
        shape, order = [-1, card.time_steps, len(bands), t, t], ["batch", "time", "bands", "height", "width"]
    else:
        shape, order = [-1, len(bands), t, t], ["batch", "bands", "height", "width"]
    entry: dict[str, Any] = {
        "name": "input",
        "bands": bands,
        "input": {"shape": shape, "dim_order": order, "data_type": "float32"},
        "value_scaling": value_scaling,
        "resize_type": None,
        "pre_processing_function": None,
    }
    if card.input_scale != 1.0:
        entry["description"] = f"raw values x {card.input_scale:g} before the z-score"
    if card.indices:
        entry["description"] = f"{', '.join(card.indices)} computed from the named bands, then standardised"
    return entry


def _output(card: ModelCard) -> dict[str, Any]:
    """The ``mlm:output`` entry: class probabilities ``(B, K, H, W)`` and the classes of the channels."""
    t = card.tile_size
    return {
        "name": "classes",
        "tasks": ["semantic-segmentation"],
        "result": {
            "shape": [-1, card.num_classes, t, t],
            "dim_order": ["batch", "channel", "height", "width"],
            "data_type": "float32",
        },
        "description": f"class {card.output} per output channel; the class map is the argmax",
        "classification:classes": [
            {"value": int(c.value), "name": c.name, "color_hint": c.color.lstrip("#").upper()} for c in card.classes
        ],
        "post_processing_function": None,
    }


def mlm_item(onnx_path: str | os.PathLike, card: ModelCard, item_dir: str | os.PathLike | None = None) -> dict:
    """The STAC Item (a JSON-ready dict) of the ONNX model at ``onnx_path``, described by ``card``.

    Args:
        onnx_path: the model file (its size is recorded; hrefs are relative to ``item_dir``).
        card: its model card.
        item_dir: the folder the Item will be written to (default: the model's folder).
    """
    model = Path(onnx_path)
    base = Path(item_dir) if item_dir is not None else model.parent
    created = card.created or datetime.now(timezone.utc).isoformat(timespec="seconds")
    assets: dict[str, Any] = {
        "model": {
            "href": os.path.relpath(model, base),
            "type": ONNX_MEDIA_TYPE,
            "title": f"{card.architecture} ONNX model with its Deep Land Cover model card",
            "roles": ["mlm:model"],
            "mlm:artifact_type": "onnx",
            "file:size": model.stat().st_size,
            "bands": [{"name": b} for b in _input(card)["bands"]],
        }
    }
    deepness = card.training.get("deepness_model")
    if deepness and (model.parent / deepness).is_file():
        assets["deepness"] = {
            "href": os.path.relpath(model.parent / deepness, base),
            "type": ONNX_MEDIA_TYPE,
            "title": "the same model with a fixed input size, for the Deepness QGIS plugin",
            "roles": ["data"],
        }
    metrics = card.training.get("val_metrics") or {}
    props: dict[str, Any] = {
        "datetime": created,
        "description": f"Deep Land Cover {card.architecture} model, {card.num_classes} classes",
        "mlm:name": f"deeplandcover-{card.architecture}-{model.stem}",
        "mlm:architecture": card.architecture,
        "mlm:tasks": ["semantic-segmentation"],
        "mlm:framework": "ONNX",
        "mlm:framework_version": card.versions.get("onnx", ""),
        "mlm:pretrained": False,
        "mlm:batch_size_suggestion": 4,
        "mlm:accelerator": None,
        "mlm:accelerator_constrained": False,
        "mlm:input": [_input(card)],
        "mlm:output": [_output(card)],
        "mlm:hyperparameters": {"tile_size": card.tile_size, "overlap": card.overlap, **card.arch_params},
    }
    if not props["mlm:framework_version"]:
        del props["mlm:framework_version"]
    if metrics:
        props["deeplandcover:val_metrics"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [MLM_SCHEMA, CLASSIFICATION_SCHEMA, FILE_SCHEMA],
        "id": f"deeplandcover-{model.stem}",
        "geometry": None,
        "properties": props,
        "links": [],
        "assets": assets,
    }


def write_mlm_item(onnx_path: str | os.PathLike, card: ModelCard, out_path: str | os.PathLike | None = None) -> Path:
    """Write the MLM STAC Item of ``onnx_path`` (:func:`mlm_item`) atomically; returns its path.

    Args:
        onnx_path: the model file.
        card: its card.
        out_path: the Item's ``.json`` (default :func:`item_path`: ``<stem>.stac-item.json`` beside the model).
    """
    out = Path(out_path) if out_path is not None else item_path(onnx_path)
    item = mlm_item(onnx_path, card, out.parent)
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(item, indent=2) + "\n", encoding="utf-8")
    return out


def is_item(path: str | os.PathLike) -> bool:
    """True for a ``.json`` file (a STAC Item given as MODEL)."""
    return Path(path).suffix.lower() == ".json"


def model_from_item(path: str | os.PathLike) -> Path:
    """The ONNX model of a STAC Item with the MLM extension: the asset with role ``mlm:model``.

    A relative ``href`` is resolved against the Item's folder; ``file://`` hrefs are accepted.

    Raises:
        ModelFileError: not a readable JSON STAC Item, no MLM extension, no ``mlm:model`` asset, an
            asset that is not ONNX or not a local file.
    """
    p = Path(path)
    try:
        item = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{p.name} is not a readable STAC Item ({e}).") from e
    exts = item.get("stac_extensions") or [] if isinstance(item, dict) else []
    if not any("/mlm/" in str(x) for x in exts):
        raise ModelFileError(
            f"{p.name} is not a STAC Item with the Machine Learning Model (MLM) extension; give the .onnx file "
            "or the .stac-item.json that Train Model writes beside it."
        )
    models = [a for a in (item.get("assets") or {}).values() if "mlm:model" in (a.get("roles") or [])]
    if not models:
        raise ModelFileError(f"{p.name} has no asset with the role 'mlm:model'.")
    asset = models[0]
    href = str(asset.get("href", ""))
    if href.startswith("file://"):
        href = href[len("file://") :]
    if "://" in href:
        raise ModelFileError(f"The model asset of {p.name} is not a local file ({href}); download it first.")
    if "onnx" not in str(asset.get("mlm:artifact_type", "")) + str(asset.get("type", "")) + href.lower():
        raise ModelFileError(f"The model asset of {p.name} ({href}) is not an ONNX model; Classify Pixels runs ONNX.")
    model = (p.parent / href).resolve() if not os.path.isabs(href) else Path(href)
    if not model.is_file():
        raise ModelFileError(f"The model asset of {p.name} points to {model}, which does not exist.")
    return model
