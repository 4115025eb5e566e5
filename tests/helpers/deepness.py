"""What the Deepness QGIS plugin (0.6.x) does with an ONNX segmentation model, without QGIS.

Follows ``deepness/processing/models/model_base.py``, ``segmentor.py``, ``preprocessing_utils.py`` and
``map_processor/map_processor_segmentation.py`` of PUTvision/qgis-plugin-deepness (Apache-2.0), as
described in the interop sample set's SOURCE.md: every check its dialog makes when it loads a model, and its
per-tile processing. Written from that description for the tests; no Deepness code is copied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DeepnessLoadError(Exception):
    """Where Deepness's dialog says "Failed to load the model"."""


@dataclass
class DeepnessModel:
    """A model as Deepness sees it after loading."""

    sess: object
    tile: int
    channels: int
    class_names: list[str]
    mean: np.ndarray | None
    std: np.ndarray | None
    seg_thresh: float
    small_segment: int
    overlap_pct: int

    def process(self, tiles_nhwc: np.ndarray) -> np.ndarray:
        """``(N, tile, tile, bands)`` raster values -> class index ``(N, tile, tile)``, Deepness's way.

        First C bands, ``/ 255`` (float32), ``(x - mean) / std``, NHWC -> NCHW, run, probabilities
        below ``seg_thresh`` set to 0, argmax over channels (one channel: ``p != 0``).
        """
        x = np.float32(tiles_nhwc[..., : self.channels] * (1.0 / 255.0))
        if self.mean is not None:
            x = (x - self.mean) / self.std
        x = np.transpose(x, (0, 3, 1, 2)).astype(np.float32)
        y = self.sess.run(None, {self.sess.get_inputs()[0].name: x})[0]
        y = y.copy()
        y[y < self.seg_thresh] = 0.0
        if y.ndim == 3 or y.shape[1] == 1:
            return (y.reshape(len(y), *y.shape[-2:]) != 0).astype(np.int64)
        return np.argmax(y, axis=1)


def load(path: str | Path) -> DeepnessModel:
    """Load ``path`` as Deepness's dialog does; :class:`DeepnessLoadError` where it fails.

    Checks: one input; input height, width and channels are integers (the dialog sets its tile-size
    spin box from them); ``model_type`` (JSON) capitalised is ``Segmentor``; ``class_names`` keys are
    consecutive from 0; exactly one output, 4-D, with integer equal height and width; a ``tile_size``
    key, when present, equal to the input size.
    """
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise DeepnessLoadError("ONNX model: unsupported number of inputs")
    shape = inputs[0].shape
    if not all(isinstance(d, int) for d in shape[-3:]):
        raise DeepnessLoadError(f"input shape {shape}: height, width and channels must be integers")
    if shape[-1] != shape[-2]:
        raise DeepnessLoadError(f"input shape {shape} is not square")
    if "model_type" not in meta or str(json.loads(meta["model_type"])).capitalize() != "Segmentor":
        raise DeepnessLoadError(f"model_type {meta.get('model_type')!r} is not Segmentor")
    names = json.loads(meta.get("class_names", "{}"))
    if isinstance(names, list):
        names = names[0]
    keys = sorted(int(k) for k in names)
    if keys != list(range(len(keys))):
        raise DeepnessLoadError("Class names in the model metadata are not consecutive")
    outputs = sess.get_outputs()
    if len(outputs) != 1:
        raise DeepnessLoadError("Model with multiple output layers is not supported")
    oshape = outputs[0].shape
    if len(oshape) != 4 or oshape[2] != oshape[3] or not isinstance(oshape[2], int):
        raise DeepnessLoadError(f"Segmentation model output should be (B,C,H,W) with H == W. Has {oshape}")
    tile = int(shape[-1])
    if "tile_size" in meta and int(json.loads(meta["tile_size"])) != tile:
        raise DeepnessLoadError(f"tile_size {meta['tile_size']} differs from the input size {tile}")
    mean = np.float32(json.loads(meta["standardization_mean"])) if "standardization_mean" in meta else None
    std = np.float32(json.loads(meta["standardization_std"])) if "standardization_std" in meta else None
    return DeepnessModel(
        sess,
        tile,
        int(shape[-3]),
        [names[str(k)] for k in keys],
        mean,
        std,
        float(json.loads(meta.get("seg_thresh", "0.5"))),
        int(json.loads(meta.get("seg_small_segment", "9"))),
        int(json.loads(meta.get("tiles_overlap", "15"))),
    )


def segment(model: DeepnessModel, image_chw: np.ndarray, seg_thresh=None, small_segment=None) -> np.ndarray:
    """Deepness's class index map ``(H, W)`` of a raster ``(bands, H, W)`` with tiles side by side (no overlap).

    Edge tiles are zero-padded; after stitching, a median filter of ``2 * (small_segment // 2) + 1``
    pixels (1 = none) as Deepness applies (``cv2.medianBlur``, border replicated). ``seg_thresh`` and
    ``small_segment`` default to the model's metadata (Deepness's defaults 0.5 and 9 without it).
    """
    from scipy.ndimage import median_filter

    if seg_thresh is not None:
        model.seg_thresh = seg_thresh
    small = model.small_segment if small_segment is None else small_segment
    c, h, w = image_chw.shape
    t = model.tile
    hh, ww = -(-h // t) * t, -(-w // t) * t
    padded = np.zeros((hh, ww, c), image_chw.dtype)
    padded[:h, :w] = np.transpose(image_chw, (1, 2, 0))
    out = np.zeros((hh, ww), np.int64)
    for r in range(0, hh, t):
        for q in range(0, ww, t):
            out[r : r + t, q : q + t] = model.process(padded[None, r : r + t, q : q + t])[0]
    k = int(small // 2) * 2 + 1
    res = (out + 1).astype(np.uint8)  # Deepness's class + 1
    if k > 1:
        res = median_filter(res, size=k, mode="nearest")
    return res[:h, :w].astype(np.int64) - 1
