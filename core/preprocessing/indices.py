"""Spectral indices as extra model input channels, computed from band NAMES.

Yi, Z.-F., Bollinger, D., & Peressutti, D. (2020), "Mapping land use and land cover changes faster and
at scale with deep learning on the cloud" (Development Seed / Sinergise; Deep LULC) concatenate the
bands with NDVI, NDWI and NDBI into one feature stack; Sefrin, O., Riese, F. M., & Keller, S. (2021).
Deep Learning for Land Cover Change Detection. Remote Sensing, 13(1), 78
(https://doi.org/10.3390/rs13010078) use NDWI to find inconsistent water shorelines. Both need the
green, red, near-infrared (NIR) and short-wave infrared (SWIR 1) bands, which are found by name
through :data:`SENSOR_BANDS`, a table of band-name aliases per sensor:

================  ==================  =====================  ============
role              Sentinel-2 MSI      Landsat 8/9 OLI        generic
================  ==================  =====================  ============
green             B03, B3             B3, SR_B3              GREEN, G
red               B04, B4             B4, SR_B4              RED, R
nir               B08, B8             B5, SR_B5              NIR, N
swir1             B11                 B6, SR_B6              SWIR1, SWIR
================  ==================  =====================  ============

Indices (normalised differences, :func:`normalized_difference`):

* NDVI = (NIR - red) / (NIR + red) (Rouse et al., 1974).
* NDWI = (green - NIR) / (green + NIR) (McFeeters, 1996; water > 0).
* NDBI = (SWIR1 - NIR) / (SWIR1 + NIR) (Zha et al., 2003; built-up > 0).

The values lie in ``[-1, 1]`` and are used as model inputs **without** further standardisation
(they are already centred and of unit scale); invalid pixels (nodata, zero denominator) are 0, like
normalised bands. Index channels follow the normalised bands of each date. The sensor is detected
from the band names (:func:`detect_sensor`) so that training (manifest bands) and inference (model
card bands, the same list) resolve the same bands.

numpy only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..errors import BandMismatchError, InputError

#: sensor -> role -> accepted band names (upper case; matched after :func:`clean_name`).
SENSOR_BANDS: dict[str, dict[str, tuple[str, ...]]] = {
    "sentinel2": {"green": ("B03", "B3"), "red": ("B04", "B4"), "nir": ("B08", "B8"), "swir1": ("B11",)},
    "landsat89": {"green": ("B3", "SR_B3"), "red": ("B4", "SR_B4"), "nir": ("B5", "SR_B5"), "swir1": ("B6", "SR_B6")},
    "generic": {"green": ("GREEN", "G"), "red": ("RED", "R"), "nir": ("NIR", "N"), "swir1": ("SWIR1", "SWIR")},
}

#: index -> (a, b) roles of the normalised difference (a - b) / (a + b).
INDEX_DEFS: dict[str, tuple[str, str]] = {
    "NDVI": ("nir", "red"),
    "NDWI": ("green", "nir"),
    "NDBI": ("swir1", "nir"),
}

_S2_MARKERS = re.compile(r"^(B0\d|B8A|B12)$")
_LANDSAT_MARKERS = re.compile(r"^(SR|ST)_B\d+$")


def clean_name(name: str) -> str:
    """Upper-case band name without a date prefix (``"2015-07-11:B04"`` -> ``"B04"``) or a description
    after a space/parenthesis (``"B04 (red)"`` -> ``"B04"``)."""
    n = str(name).strip()
    if ":" in n:
        n = n.rsplit(":", 1)[1]
    n = re.split(r"[\s(]", n.strip(), maxsplit=1)[0]
    return n.upper()


def alias_table() -> str:
    """The alias table as one line of text (for error messages)."""
    return "; ".join(
        f"{s}: " + ", ".join(f"{r}={'/'.join(a)}" for r, a in roles.items()) for s, roles in SENSOR_BANDS.items()
    )


def parse_indices(text: str | Sequence[str] | None) -> list[str]:
    """``"NDVI, ndwi"`` (or a list) -> ``["NDVI", "NDWI"]`` (upper case, duplicates removed); empty -> [].

    Raises:
        InputError: an unknown index name (the message lists the known ones).
    """
    if text is None:
        return []
    items = re.split(r"[,;\s]+", text.strip()) if isinstance(text, str) else [str(t) for t in text]
    out: list[str] = []
    for it in items:
        name = it.strip().upper()
        if not name:
            continue
        if name not in INDEX_DEFS:
            raise InputError(
                f"Unknown spectral index {it!r}; choose from {', '.join(INDEX_DEFS)} (comma-separated, e.g. NDVI,NDWI)."
            )
        if name not in out:
            out.append(name)
    return out


def detect_sensor(names: Sequence[str]) -> str:
    """Sensor whose naming the band names follow: ``sentinel2``, ``landsat89`` or ``generic``.

    Zero-padded names (``B01``..``B09``), ``B8A`` or ``B12`` mean Sentinel-2; ``SR_B*``/``ST_B*`` mean
    Landsat Collection 2; unpadded ``B1``..``B11`` without ``B8``/``B12`` but with ``B10`` or
    ``B5`` and ``B6`` mean Landsat 8/9; otherwise Sentinel-2 unpadded names (Google Earth Engine
    style ``B2, B3, B4, B8``) if they resolve, else generic names (``RED``, ``NIR``...).
    """
    up = [clean_name(n) for n in names]
    if any(_S2_MARKERS.match(n) for n in up):
        return "sentinel2"
    if any(_LANDSAT_MARKERS.match(n) for n in up):
        return "landsat89"
    if "B8" not in up and ("B10" in up or ("B5" in up and "B6" in up)):
        return "landsat89"
    if any(n in up for n in ("B3", "B4", "B8", "B11")):
        return "sentinel2"
    return "generic"


def band_positions(indices: Sequence[str], names: Sequence[str], sensor: str = "auto") -> dict[str, int]:
    """0-based position in ``names`` of every role the ``indices`` need.

    Args:
        indices: index names (:data:`INDEX_DEFS` keys).
        names: band names of one date, in channel order.
        sensor: ``"auto"`` (:func:`detect_sensor`) or a :data:`SENSOR_BANDS` key.

    Raises:
        BandMismatchError: a needed band is missing (names the band, the bands present and the
            alias table).
    """
    sensor = detect_sensor(names) if sensor == "auto" else sensor
    if sensor not in SENSOR_BANDS:
        raise InputError(f"Unknown sensor {sensor!r}; use one of {', '.join(SENSOR_BANDS)}.")
    up = [clean_name(n) for n in names]
    out: dict[str, int] = {}
    for idx in indices:
        for role in INDEX_DEFS[idx]:
            if role in out:
                continue
            aliases = SENSOR_BANDS[sensor][role]
            pos = next((up.index(a) for a in aliases if a in up), None)
            if pos is None:
                raise BandMismatchError(
                    f"{idx} needs the {role} band ({'/'.join(aliases)} for {sensor}) but the bands are {list(names)}. "
                    f"Export the chips with that band (BANDS), or name the raster bands after one of the sensors of "
                    f"the alias table ({alias_table()})."
                )
            out[role] = pos
    return out


def normalized_difference(a: np.ndarray, b: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """``(a - b) / (a + b)`` as float32, 0 where the denominator is 0, not finite, or ``valid`` is False.

    Args:
        a, b: arrays of one shape (any numeric dtype; reflectance of any scale).
        valid: optional bool mask broadcastable to that shape.
    """
    a = a.astype(np.float32, copy=False)
    b = b.astype(np.float32, copy=False)
    den = a + b
    ok = np.isfinite(den) & (den != 0)
    if valid is not None:
        ok &= valid
    out = np.zeros(np.broadcast(a, b).shape, np.float32)
    np.divide(a - b, den, out=out, where=ok)
    np.clip(out, -1.0, 1.0, out=out)
    return out


def compute_indices(
    data: np.ndarray,
    names: Sequence[str],
    indices: Sequence[str],
    valid: np.ndarray | None = None,
    sensor: str = "auto",
) -> np.ndarray:
    """Index channels of raw band data.

    Args:
        data: ``(..., C, H, W)`` raw band values (any dtype, any reflectance scale), channel c named
            ``names[c]``.
        names: C band names.
        indices: index names, output channel order.
        valid: optional ``(..., H, W)`` bool; False -> 0.
        sensor: see :func:`band_positions`.

    Returns:
        ``(..., I, H, W)`` float32 in ``[-1, 1]`` (I = ``len(indices)``; ``(..., 0, H, W)`` for none).

    Raises:
        BandMismatchError: a needed band is missing; InputError: ``len(names)`` differs from C.
    """
    if data.shape[-3] != len(names):
        raise InputError(f"{len(names)} band names for {data.shape[-3]} bands.")
    pos = band_positions(indices, names, sensor)
    chans = []
    for idx in indices:
        ra, rb = INDEX_DEFS[idx]
        chans.append(normalized_difference(data[..., pos[ra], :, :], data[..., pos[rb], :, :], valid))
    if not chans:
        return np.zeros((*data.shape[:-3], 0, *data.shape[-2:]), np.float32)
    return np.stack(chans, axis=-3)


def append_indices(
    normalised: np.ndarray,
    raw: np.ndarray,
    names: Sequence[str],
    indices: Sequence[str],
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """``normalised`` ``(..., C, H, W)`` float32 with the index channels of ``raw`` appended: ``(..., C+I, H, W)``."""
    if not indices:
        return normalised
    return np.concatenate([normalised, compute_indices(raw, names, indices, valid)], axis=-3)
