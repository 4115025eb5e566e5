"""Helpers for the change tests: a torch-free ONNX 'change model' with a model card."""

from __future__ import annotations

from pathlib import Path


def diff_model(path: Path, bands: list[str], task: str, threshold: float = 20.0) -> Path:
    """ONNX change model without torch: P(change) = softmax([0, |x2_b0 - x1_b0| - t])."""
    import onnx
    from onnx import TensorProto, helper

    from deeplandcover.core.classes import ClassInfo
    from deeplandcover.core.modelcard import ModelCard, write_card

    c = len(bands)
    init = [
        helper.make_tensor(n, TensorProto.INT64, [1], [v])
        for n, v in (("s0", 0), ("e0", 1), ("s1", c), ("e1", c + 1), ("ax", 1))
    ]
    init.append(helper.make_tensor("t", TensorProto.FLOAT, [], [threshold]))
    nodes = [
        helper.make_node("Slice", ["input", "s0", "e0", "ax"], ["x1"]),
        helper.make_node("Slice", ["input", "s1", "e1", "ax"], ["x2"]),
        helper.make_node("Sub", ["x2", "x1"], ["d"]),
        helper.make_node("Abs", ["d"], ["ad"]),
        helper.make_node("Sub", ["ad", "t"], ["logit"]),
        helper.make_node("Sub", ["d", "d"], ["zero"]),
        helper.make_node("Concat", ["zero", "logit"], ["logits"], axis=1),
        helper.make_node("Softmax", ["logits"], ["output"], axis=1),
    ]
    in_ch = 2 * c if task == "change" else c
    graph = helper.make_graph(
        nodes,
        "diff",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", in_ch, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["b", 2, "h", "w"])],
        init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    card = ModelCard(
        architecture="test-diff",
        bands=bands,
        mean=[0.0] * c,
        std=[1.0] * c,
        task=task,
        classes=[ClassInfo(0, "no change", "#282828"), ClassInfo(1, "change", "#ff3c3c")],
        tile_size=32,
        overlap=8,
        bands2=bands if task == "change" else [],
        mean2=[0.0] * c if task == "change" else [],
        std2=[1.0] * c if task == "change" else [],
    )
    write_card(path, card)
    return path


def on_own_grid(src: Path, dst: Path, shrink: tuple[int, int], resampling: str = "bilinear") -> Path:
    """``src`` resampled onto its own bounds with ``shrink`` = (columns, rows) pixels fewer, written to ``dst``.

    The shape of OSCD's abudhabi, hongkong and saclay_e: each date delivered on its own grid (same bounds,
    a few pixels fewer). ``resampling``: a rasterio ``Resampling`` name. Band descriptions are kept.
    """
    import numpy as np
    import rasterio
    from rasterio.transform import from_bounds
    from rasterio.warp import Resampling, reproject

    with rasterio.open(src) as ds:
        cols, rows = ds.width - shrink[0], ds.height - shrink[1]
        transform = from_bounds(*ds.bounds, cols, rows)
        data = np.zeros((ds.count, rows, cols), ds.dtypes[0])
        reproject(
            ds.read(),
            data,
            src_transform=ds.transform,
            src_crs=ds.crs,
            dst_transform=transform,
            dst_crs=ds.crs,
            resampling=Resampling[resampling],
        )
        with rasterio.open(dst, "w", **(ds.profile | {"width": cols, "height": rows, "transform": transform})) as out:
            out.write(data)
            out.descriptions = ds.descriptions
    return Path(dst)
