"""ONNX export of a trained model with its model card, verified against PyTorch every time; its Deepness copy.

The exported graph is the model followed by a softmax over the class axis, so its output is
``(B, K, H, W)`` float32 probabilities (``card.output == "probabilities"``), with dynamic batch,
height and width (time steps of a sequence model are fixed). Uses the TorchScript-based exporter
(``dynamo=False``), which needs no ``onnxscript``. Pattern after segmentation_models_pytorch's ONNX
round-trip test (smp's ``tests/models/base.py``): opset 17, ``onnx.checker``, ONNX Runtime vs PyTorch with
``assert_allclose``-style tolerances.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..chips.manifest import Manifest
from ..errors import ModelFileError
from ..modelcard import ModelCard, write_card
from ..raster.io import atomic_output
from ..stac import write_mlm_item

OPSET = 17
RTOL, ATOL = 1e-3, 1e-4


class _WithSoftmax(nn.Module):
    """``softmax(model(x), dim=1)``: the graph outputs probabilities."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.softmax(self.model(x), dim=1)


@dataclass
class ParityResult:
    """ONNX Runtime vs PyTorch on one batch.

    Attributes:
        passed: all values within ``rtol``/``atol``.
        max_abs_diff: largest absolute difference of the probabilities.
        shape: the input shape checked.
    """

    passed: bool
    max_abs_diff: float
    shape: list[int]
    rtol: float = RTOL
    atol: float = ATOL

    def to_dict(self) -> dict[str, Any]:  # noqa: D102
        return {
            "passed": self.passed,
            "max_abs_diff": self.max_abs_diff,
            "shape": self.shape,
            "rtol": self.rtol,
            "atol": self.atol,
        }


def library_versions() -> dict[str, str]:
    """Versions of the libraries that trained and exported a model."""
    import onnx
    import onnxruntime

    return {
        "torch": str(torch.__version__),
        "onnx": str(onnx.__version__),
        "onnxruntime": str(onnxruntime.__version__),
        "numpy": str(np.__version__),
    }


def card_from_manifest(
    manifest: Manifest,
    architecture: str,
    arch_params: dict[str, Any],
    training: dict[str, Any] | None = None,
    *,
    indices: list[str] | None = None,
    dates: list[str] | None = None,
) -> ModelCard:
    """The model card of a model trained on chips described by ``manifest``.

    Bands, normalisation (band mean/std over valid pixels), classes with names and colours, tile
    size, overlap (tile/4), time steps and dates, pixel size and CRS all come from the manifest.
    The export preprocessing (``sources["preprocessing"]``) and the sensor groups of a multi-sensor
    export (``sources["sensor_bands"]``, read back by Classify Pixels) are copied into ``training``.

    Args:
        indices: spectral index channels appended to each date's bands (:mod:`core.preprocessing.indices`).
        dates: for a sequence model fed a subset of the chip dates (random sequences, Sefrin et al. 2021), the
            dates it takes at inference; default all ``manifest.time_steps``.
    """
    seq = manifest.kind == "sequence"
    pair = manifest.kind == "pair"
    training = dict(training or {})
    for key in ("sensor_bands", "preprocessing"):
        if manifest.sources.get(key):
            training.setdefault(key, manifest.sources[key])
    seq_dates = list(dates) if dates is not None else list(manifest.time_steps)
    return ModelCard(
        architecture=architecture,
        task="change" if pair else "segmentation",
        layout="BTCHW" if seq else "BCHW",
        bands=list(manifest.bands),
        mean=[float(b.mean) for b in manifest.band_stats],
        std=[float(b.std) for b in manifest.band_stats],
        normalization=manifest.sources.get("normalization", "standard"),
        bands2=list(manifest.bands2 or manifest.bands) if pair else [],
        mean2=[float(b.mean) for b in (manifest.band_stats2 or manifest.band_stats)] if pair else [],
        std2=[float(b.std) for b in (manifest.band_stats2 or manifest.band_stats)] if pair else [],
        classes=list(manifest.classes),
        time_steps=(len(seq_dates) if dates is not None else manifest.num_time_steps) if seq else 0,
        dates=seq_dates if seq else [],
        tile_size=int(manifest.tile_size),
        overlap=int(manifest.tile_size) // 4,
        pixel_size=[float(p) for p in manifest.pixel_size],
        pixel_size_units=manifest.pixel_size_units,
        crs_wkt=manifest.crs_wkt,
        output="probabilities",
        ignore_value=int(manifest.ignore_value),
        indices=list(indices or []),
        arch_params=dict(arch_params),
        training=training,
        versions=library_versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def with_training(card: ModelCard, training: dict[str, Any]) -> ModelCard:
    """``card`` (of :func:`card_from_manifest`) with the finished run's ``training`` record and the export time.

    ``training``'s keys come first; what the card already records there (the export preprocessing, the sensor
    groups) follows unless ``training`` names it too, as :func:`card_from_manifest` would have merged them.
    """
    merged = {**training, **{k: v for k, v in card.training.items() if k not in training}}
    return replace(card, training=merged, created=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def check_parity(onnx_path: str | os.PathLike, model: nn.Module, sample: torch.Tensor) -> ParityResult:
    """Run ``sample`` through ONNX Runtime and PyTorch (softmax of the logits) and compare.

    Args:
        onnx_path: the exported model.
        model: the PyTorch model (logits), any device; evaluated on CPU in eval mode.
        sample: an input batch, ``(B, C, H, W)`` or ``(B, T, C, H, W)`` float32.
    """
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = sample.detach().float().cpu()
    with torch.inference_mode():
        ref = torch.softmax(model.cpu().eval()(x), dim=1).numpy()
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    diff = float(np.max(np.abs(got - ref))) if got.shape == ref.shape else float("inf")
    ok = got.shape == ref.shape and bool(np.allclose(got, ref, rtol=RTOL, atol=ATOL))
    return ParityResult(ok, diff, list(x.shape))


def deepness_path(onnx_path: str | os.PathLike) -> Path:
    """Where :func:`export_onnx` writes the Deepness copy of ``onnx_path``: ``<stem>_deepness.onnx`` beside it."""
    p = Path(onnx_path)
    return p.with_name(f"{p.stem}_deepness.onnx")


def _torch_export(model: nn.Module, x: torch.Tensor, path: Path, spatial: bool) -> None:
    """``torch.onnx.export`` of ``softmax(model(x))``: dynamic batch, and dynamic height/width with ``spatial``."""
    dyn_in = {0: "batch", x.dim() - 2: "height", x.dim() - 1: "width"} if spatial else {0: "batch"}
    dyn_out = {0: "batch", 2: "height", 3: "width"} if spatial else {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _WithSoftmax(model),
            (x,),
            str(path),
            opset_version=OPSET,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": dyn_in, "output": dyn_out},
            do_constant_folding=True,
            dynamo=False,
        )


def export_onnx(
    model: nn.Module,
    card: ModelCard,
    out_path: str | os.PathLike,
    sample: torch.Tensor,
    *,
    deepness: bool = True,
) -> ParityResult:
    """Export ``model`` to ONNX with softmax appended, store ``card``, check and verify the file.

    Steps: ``torch.onnx.export`` (opset 17, dynamic batch/height/width) to a temporary file,
    :func:`core.modelcard.write_card`, ``onnx.checker.check_model``, the parity check of
    :func:`check_parity` on ``sample`` (recorded in ``card.training["onnx_parity"]``), then the
    file is renamed into place. A failed export leaves no file at ``out_path``.

    With ``deepness`` (the default) and a model that Deepness can run (:meth:`ModelCard.deepness_unsupported`
    is None), a second file :func:`deepness_path` is written by :func:`export_deepness_onnx`: the same
    graph with its height and width fixed to ``card.tile_size``, which the Deepness QGIS plugin loads
    (the model with dynamic height/width does not load there, and a fixed size would take TILE_SIZE
    away from Classify Pixels; BENCHMARKS.md measures it). Its file name is recorded in
    ``card.training["deepness_model"]``. Last, the STAC Item with the Machine Learning Model extension
    (:func:`core.stac.write_mlm_item`) is written beside the model (``<stem>.stac-item.json``).

    Args:
        model: trained model producing logits ``(B, K, H, W)``; moved to CPU and eval mode.
        card: the model card (its ``output`` is set to ``"probabilities"``).
        out_path: destination ``.onnx``.
        sample: a validation batch ``(B, C, H, W)`` or ``(B, T, C, H, W)`` float32 (normalised).
        deepness: also write the Deepness copy when the model allows it.

    Returns:
        The parity result (``passed`` False means ONNX Runtime and PyTorch disagree beyond
        rtol 1e-3 / atol 1e-4; the file is still written so that the report can say so).

    Raises:
        ModelFileError: the export or the ONNX checker failed.
    """

    out_path = Path(out_path)
    model = model.cpu().eval()
    x = sample.detach().float().cpu()
    card.output = "probabilities"
    with_deepness = deepness and card.deepness_unsupported() is None
    if with_deepness:
        card.training = {**card.training, "deepness_model": deepness_path(out_path).name}
    parity = write_checked_onnx(model, card, out_path, x)
    if with_deepness:
        export_deepness_onnx(model, card, deepness_path(out_path))
    write_mlm_item(out_path, card)
    return parity


def write_checked_onnx(
    model: nn.Module,
    card: ModelCard,
    out_path: str | os.PathLike,
    x: torch.Tensor,
    *,
    require_parity: bool = False,
    what: str | None = None,
) -> ParityResult:
    """``softmax(model(x))`` exported to ``out_path`` with ``card``, checked, renamed into place (atomic).

    ``torch.onnx.export`` (opset 17, dynamic batch/height/width) to a temporary file, the parity check of
    :func:`check_parity` on ``x`` (recorded in ``card.training["onnx_parity"]``), :func:`core.modelcard.write_card`,
    ``onnx.checker.check_model``. ``model`` must be on the CPU in eval mode; ``x`` is a float32 CPU batch.

    Args:
        require_parity: refuse (nothing written) when ONNX Runtime and PyTorch disagree; else the file is
            written and the caller reports the failed check.
        what: the model's name in messages (default ``card.architecture``).

    Raises:
        ModelFileError: the export, the checker or (with ``require_parity``) the parity check failed.
    """
    import onnx

    try:
        with atomic_output(out_path) as tmp:
            _torch_export(model, x, tmp, spatial=True)
            parity = check_parity(tmp, model, x)
            if require_parity and not parity.passed:
                raise ModelFileError(f"ONNX and PyTorch disagree (max |diff| {parity.max_abs_diff:.2e}); not written.")
            card.training = {**card.training, "onnx_parity": parity.to_dict()}
            write_card(tmp, card)
            onnx.checker.check_model(str(tmp))
    except ModelFileError:
        raise
    except Exception as e:
        raise ModelFileError(f"ONNX export of {what or card.architecture} failed ({type(e).__name__}: {e}).") from e
    return parity


def export_deepness_onnx(model: nn.Module, card: ModelCard, out_path: str | os.PathLike) -> Path:
    """The copy of a model that the Deepness QGIS plugin loads and runs as it is.

    Deepness (Aszkowski, P., Ptak, B., Kraft, M., Pieczyński, D., & Drapikowski, P. (2023). Deepness:
    Deep neural remote sensing plugin for QGIS. SoftwareX, 23, 101495) reads the input's height and
    width as integers (its tile size) and checks that the output is ``(B, C, H, W)`` with ``H == W``, so
    this export fixes both to ``card.tile_size`` and keeps the batch dynamic. Its metadata holds our
    card and the Deepness keys (:meth:`ModelCard.deepness_metadata`: ``seg_thresh = 0`` and
    ``seg_small_segment = 0`` so that Deepness gives our argmax). The file is checked
    (``onnx.checker``) and its parity with PyTorch is verified on a seeded random tile.

    Args:
        model: the trained model (logits ``(B, K, H, W)``), any device.
        card: its card; must be one Deepness can run (see :meth:`ModelCard.deepness_unsupported`).
        out_path: destination ``.onnx`` (written atomically).

    Returns:
        ``out_path``.

    Raises:
        ModelFileError: Deepness cannot run this model, the export failed, or ONNX Runtime and PyTorch disagree.
    """
    import onnx

    why = card.deepness_unsupported()
    if why is not None:
        raise ModelFileError(f"No Deepness copy of this model: {why}.")
    out_path = Path(out_path)
    model = model.cpu().eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, card.in_channels, card.tile_size, card.tile_size, generator=gen)
    try:
        with atomic_output(out_path) as tmp:
            _torch_export(model, x, tmp, spatial=False)
            parity = check_parity(tmp, model, x)
            if not parity.passed:
                raise ModelFileError(
                    f"The Deepness copy disagrees with PyTorch (max |diff| {parity.max_abs_diff:.2e}); not written."
                )
            write_card(tmp, card, deepness=True)
            onnx.checker.check_model(str(tmp))
    except ModelFileError:
        raise
    except Exception as e:
        raise ModelFileError(f"Deepness export of {card.architecture} failed ({type(e).__name__}: {e}).") from e
    return out_path
