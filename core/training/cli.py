"""The command line of Train Model: ``python -m deeplandcover.core.training`` (docs/training.md).

One option per :class:`~core.training.config.TrainConfig` field, with the choices of
:data:`~core.training.config.CHOICES`. Works under ``torchrun`` (every process parses the same
arguments; only rank 0 prints the result).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from collections.abc import Sequence

from ..errors import DeepLandCoverError
from ..feedback import PrintFeedback
from . import distributed as dist_utils
from .config import CHOICES, TrainConfig
from .trainer import train_model


def build_parser() -> argparse.ArgumentParser:
    """``argparse`` parser of the CLI: ``--chips``, ``--out`` and one option per :class:`TrainConfig` field.

    Field ``x_y`` becomes ``--x-y``; booleans get ``--x``/``--no-x``; the fields of :data:`CHOICES` list
    their choices; ``arch_params`` takes JSON (``'{"dropout": 0.1}'``); ``--lr 0`` = LR range test.
    """
    ap = argparse.ArgumentParser(
        prog="python -m deeplandcover.core.training",
        description="Train a segmentation model on chip folders (Export Training Tiles) and export it to ONNX. "
        "Run under torchrun for multi-GPU / multi-node DistributedDataParallel training.",
    )
    ap.add_argument("--chips", nargs="+", required=True, help="chip folder(s) (same bands, classes and kind)")
    ap.add_argument("--out", required=True, help="output folder (model.onnx, model.pt, report.html ...)")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        opt = "--" + f.name.replace("_", "-")
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if f.name in CHOICES:
            ap.add_argument(opt, choices=list(CHOICES[f.name]), default=default, help=f"default {default}")
        elif hint is bool:
            ap.add_argument(opt, action=argparse.BooleanOptionalAction, default=default)
        elif f.name == "arch_params":
            ap.add_argument(opt, type=json.loads, default=default, help="extra architecture arguments as JSON")
        else:
            typ = hint if hint in (int, float, str) else (args[0] if args and args[0] in (int, float, str) else str)
            ap.add_argument(opt, type=typ, default=default, help=f"default {default}")
    return ap


def config_from_args(ns: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed CLI arguments (``--lr 0``: None, the LR range test)."""
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(TrainConfig)}
    if values["lr"] is not None and values["lr"] <= 0:
        values["lr"] = None
    return TrainConfig(**values)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (``python -m deeplandcover.core.training`` or ``torchrun ... -m deeplandcover.core.training``).

    Returns:
        0 on success, 2 on a user error or cancel (message on stderr), the traceback otherwise.
    """
    ns = build_parser().parse_args(argv)
    try:
        res = train_model(ns.chips, ns.out, config_from_args(ns), PrintFeedback())
    except DeepLandCoverError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    if dist_utils.env_context().is_main:
        print(
            json.dumps(
                {
                    "model": str(res.model_path),
                    "checkpoint": str(res.checkpoint_path),
                    "report": str(res.report_path),
                    "best_epoch": res.best_epoch,
                    "epochs_run": res.epochs_run,
                    "oa": round(res.metrics["oa"], 4),
                    "miou": round(res.metrics["miou"], 4),
                    "onnx_parity": res.parity.get("passed"),
                },
                indent=1,
            )
        )
    return 0
