"""Where an output came from: plugin version, model file and SHA-256, architecture, parameters, date.

Every raster output of Classify Pixels and Detect Change carries a :class:`Provenance` as GeoTIFF
metadata tags (``DLC_*`` in GDAL's default metadata domain, plus ``TIFFTAG_SOFTWARE`` and
``TIFFTAG_DATETIME``), and every GeoPackage polygon output as GDAL layer metadata (stored in the
GeoPackage's ``gpkg_metadata`` tables). ``gdalinfo out.tif`` shows them; :func:`read_provenance` reads
them back. QGIS-free; no third-party import at module level.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SOFTWARE = "Deep Land Cover"
#: Prefix of the metadata keys.
PREFIX = "DLC_"


def plugin_version() -> str:
    """The plugin's version, from ``metadata.txt`` at the package root (``"unknown"`` when absent)."""
    meta = Path(__file__).resolve().parents[1] / "metadata.txt"
    try:
        m = re.search(r"^version\s*=\s*(\S+)", meta.read_text(encoding="utf-8"), re.M)
    except OSError:
        return "unknown"
    return m.group(1) if m else "unknown"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in ``chunk``-byte pieces (bounded memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def json_safe(value: Any) -> Any:
    """``value`` as JSON-serialisable data: paths as text, dataclasses as dicts, geometry lists summarised."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_safe(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        if "type" in value and "coordinates" in value:
            return f"{value['type']} geometry"
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], Mapping) and "coordinates" in value[0]:
            return f"{len(value)} geometries"
        return [json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@dataclass(frozen=True)
class Provenance:
    """What produced an output.

    Attributes:
        tool: the algorithm (``"classifypixels"``, ``"detectchange"``...).
        model: the model file name (``""`` for methods without a model); ``model_sha256`` its hex SHA-256.
        architecture: the model card's architecture (``""`` without a model).
        parameters: the core options of the run (JSON-safe, see :func:`json_safe`).
        inputs: the input file names.
        version: the plugin version. created: ISO 8601 UTC time of the run.
    """

    tool: str
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    model: str = ""
    model_sha256: str = ""
    architecture: str = ""
    version: str = field(default_factory=plugin_version)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def tags(self) -> dict[str, str]:
        """GeoTIFF / GDAL metadata items (all strings): ``DLC_*``, ``TIFFTAG_SOFTWARE``, ``TIFFTAG_DATETIME``.

        Empty items (the model of a method without one) are left out: GDAL does not store empty values.
        """
        when = datetime.fromisoformat(self.created)
        items = {
            f"{PREFIX}SOFTWARE": SOFTWARE,
            f"{PREFIX}VERSION": self.version,
            f"{PREFIX}TOOL": self.tool,
            f"{PREFIX}MODEL": self.model,
            f"{PREFIX}MODEL_SHA256": self.model_sha256,
            f"{PREFIX}ARCHITECTURE": self.architecture,
            f"{PREFIX}PARAMETERS": json.dumps(self.parameters, sort_keys=True),
            f"{PREFIX}INPUTS": json.dumps(self.inputs),
            f"{PREFIX}CREATED": self.created,
            "TIFFTAG_SOFTWARE": f"{SOFTWARE} {self.version}",
            "TIFFTAG_DATETIME": when.strftime("%Y:%m:%d %H:%M:%S"),
        }
        return {k: v for k, v in items.items() if v}


def for_run(
    tool: str,
    options: Any,
    inputs: Sequence[str | os.PathLike],
    model: str | os.PathLike | None = None,
    architecture: str = "",
    extra: Mapping[str, Any] | None = None,
) -> Provenance:
    """The :class:`Provenance` of one run: ``options`` (a core options dataclass) and ``extra`` as its parameters.

    The model file is hashed here (SHA-256, streamed), once per run.
    """
    params = json_safe(options) if options is not None else {}
    return Provenance(
        tool=tool,
        parameters={**params, **json_safe(dict(extra or {}))},
        inputs=[Path(p).name for p in inputs],
        model=Path(model).name if model else "",
        model_sha256=file_sha256(model) if model else "",
        architecture=architecture,
    )


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """The ``DLC_*`` items of a raster (GeoTIFF tags) or of a vector file's first layer (GDAL layer metadata).

    Keys lose their prefix and are lower-cased; ``parameters`` and ``inputs`` are decoded from JSON.
    Returns ``{}`` when the file carries none.
    """
    p = Path(path)
    if p.suffix.lower() in (".gpkg", ".shp", ".geojson", ".fgb"):
        import pyogrio

        info = pyogrio.read_info(p)
        tags = info.get("layer_metadata") or {}
    else:
        import rasterio

        with rasterio.open(p) as ds:
            tags = ds.tags()
    out: dict[str, Any] = {}
    for k, v in tags.items():
        if k.startswith(PREFIX):
            key = k[len(PREFIX) :].lower()
            out[key] = json.loads(v) if key in ("parameters", "inputs") else v
    return out
