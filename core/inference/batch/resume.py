"""Resumable batch runs: what an output depends on (its fingerprint), the JSON sidecar that records it, cleanup.

Every task writes its GeoTIFF through :func:`core.raster.io.atomic_output` and then a sidecar
``<output>.json`` holding the fingerprint of what produced it (model SHA-256, input sizes and mtimes,
window, result-changing settings). A re-run skips tasks whose output and matching sidecar exist.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...raster.io import atomic_output
from .plan import BatchTask

if TYPE_CHECKING:
    from ..options import ClassifyOptions

#: ``format`` of every sidecar.
SIDECAR_FORMAT = "deeplandcover-batch"


def input_stamp(path: str) -> list[Any]:
    """``[path, size in bytes, mtime in ns]``: a file counts as unchanged while these are."""
    st = os.stat(path)
    return [path, st.st_size, st.st_mtime_ns]


def task_fingerprint(task: BatchTask, model_sha: str, settings: dict[str, Any]) -> dict[str, Any]:
    """What an output depends on: model, inputs (path, size, mtime), window and result-changing settings."""
    return {
        "model_sha256": model_sha,
        "inputs": [input_stamp(p) for p in task.inputs],
        "block": task.block,
        "halo": task.halo,
        "settings": settings,
    }


def sidecar_path(output: str | os.PathLike) -> Path:
    """The sidecar of an output: ``<output>.json``."""
    return Path(str(output) + ".json")


def is_finished(task: BatchTask, fingerprint: dict[str, Any]) -> bool | None:
    """Whether ``task`` is done with this fingerprint: True (output written), None (done, area empty), False.

    The GeoTIFF is renamed into place atomically and the sidecar written after it, so a sidecar with the
    same fingerprint next to an existing output means a complete output of the same model and settings.
    """
    side = sidecar_path(task.output)
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if meta.get("format") != SIDECAR_FORMAT or meta.get("fingerprint") != json.loads(json.dumps(fingerprint)):
        return False
    if meta.get("empty"):
        return None
    return True if Path(task.output).is_file() else False


def write_sidecar(task: BatchTask, fingerprint: dict[str, Any], empty: bool, info: dict[str, Any]) -> None:
    """Write the sidecar of a finished task (after its output), atomically; ``info`` is kept for the log."""
    with atomic_output(sidecar_path(task.output)) as tmp:
        tmp.write_text(
            json.dumps(
                {"format": SIDECAR_FORMAT, "version": 1, "fingerprint": fingerprint, "empty": empty, **info}, indent=1
            ),
            encoding="utf-8",
        )


def remove_stale(task: BatchTask) -> None:
    """Delete leftovers of a killed earlier attempt (temporary files never look complete, but take space)."""
    out = Path(task.output)
    patterns = (f".{out.stem}.tmp-*", f".{out.name}.tmp-*", f".{out.stem}.halo-*", f"..{out.stem}.halo-*")
    for p in [q for pat in patterns for q in out.parent.glob(pat)]:
        with contextlib.suppress(OSError):
            p.unlink()


def output_settings(options: ClassifyOptions, tile: int, overlap: int) -> dict[str, Any]:
    """The options that change the output, for the fingerprint (batch size, threads and device do not).

    Args:
        options: the run's options. tile, overlap: tile size and overlap as resolved for the model, pixels.
    """
    mask = options.mask
    if isinstance(mask, (str, os.PathLike)):
        mask_id: Any = input_stamp(str(Path(mask).resolve()))
    elif mask is not None:
        mask_id = hashlib.sha256(json.dumps(list(mask), sort_keys=True, default=str).encode()).hexdigest()
    else:
        mask_id = None
    band_map = options.band_map
    return {
        "tile": tile,
        "overlap": overlap,
        "blending": options.blending,
        "tta": bool(options.tta),
        "band_map": list(band_map) if band_map else None,
        "mask": mask_id,
    }
