"""Which raster bands feed which model bands: band mapping, name matching, series, change pairs, sensors.

:func:`plan_sources` turns a model card and the input rasters' band names into one :class:`BandSource` per
raster and model date: a single raster (BCHW models), T dates (BTCHW), a change pair (two rasters, or one
two-date composite) or one raster per sensor (early-fusion models).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BandMismatchError, InputError
from ..modelcard import ModelCard
from ..raster.grid import undescribed


@dataclass(frozen=True)
class BandSource:
    """Bands of one input raster that form (part of) one date of the model input.

    Attributes:
        ds_index: index of the raster in the inputs.
        bands: 1-based raster band indexes, in model order.
        mean, std: the model's normalisation statistics of these bands.
        date: model date this source belongs to (sources of one date are concatenated).
        names: the model's names of these bands (to compute spectral indices).
    """

    ds_index: int
    bands: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    date: int = 0
    names: tuple[str, ...] = ()


def parse_band_map(text: str | Sequence[int] | None) -> list[int] | None:
    """``"4,3,2,8"`` (or a list) -> ``[4, 3, 2, 8]``; empty -> None.

    Raises:
        InputError: entries that are not positive integers.
    """
    if text is None:
        return None
    if isinstance(text, str):
        parts = [p for p in re.split(r"[,;\s]+", text.strip()) if p]
        if not parts:
            return None
        if not all(p.isdigit() and int(p) > 0 for p in parts):
            raise InputError(f"Band mapping {text!r} must list 1-based band numbers, e.g. '4,3,2,8'.")
        return [int(p) for p in parts]
    vals = [int(v) for v in text]
    if any(v <= 0 for v in vals):
        raise InputError(f"Band mapping {vals} must list 1-based band numbers.")
    return vals or None


def select_bands(
    model_bands: Sequence[str],
    raster_bands: Sequence[str],
    raster_name: str,
    band_map: Sequence[int] | None = None,
    positional: bool = False,
) -> tuple[int, ...]:
    """1-based raster bands feeding the model bands, in model order.

    Matching: ``band_map`` if given; else band names (case-insensitive; Sentinel-2 names with or without
    the zero, ``B2`` = ``B02``, see :func:`_name_key`); else, when the raster has
    no band descriptions (``B1``...) or ``positional`` (Deepness models take the first C bands), the
    first ``len(model_bands)`` bands.

    Raises:
        BandMismatchError: listing the model bands and the raster bands, and how to map them.
    """
    n, have = len(model_bands), list(raster_bands)
    if band_map:
        bad = [b for b in band_map if not 1 <= b <= len(have)]
        if len(band_map) != n or bad:
            raise BandMismatchError(
                f"Band mapping {list(band_map)} does not fit: the model takes {n} bands {list(model_bands)} and "
                f"{raster_name} has {len(have)} bands {have}. Give one 1-based raster band per model band."
            )
        return tuple(int(b) for b in band_map)
    low = [b.strip().lower() for b in have]
    missing = [b for b in model_bands if b.strip().lower() not in low]
    if not missing:
        return tuple(low.index(b.strip().lower()) + 1 for b in model_bands)
    keys = [_name_key(b) for b in have]
    named = not undescribed(have)
    if named and len(set(keys)) == len(keys) and all(_name_key(b) in keys for b in model_bands):
        return tuple(keys.index(_name_key(b)) + 1 for b in model_bands)
    # Only bands without descriptions (B1...Bn, as GDAL names them) fall back to position: B02,B03,B04,B05
    # are named bands, and B05 must never stand in for a model's B08.
    if (positional and len(have) >= n) or (not named and len(have) == n):
        return tuple(range(1, n + 1))
    example = ",".join(str(i + 1) for i in range(min(n, len(have))))
    raise BandMismatchError(
        f"The model expects {n} bands {list(model_bands)} (in this order) but {raster_name} has {len(have)} bands "
        f"{have}; not found: {missing}. Name the raster bands like the model's, or set the band mapping to the "
        f"1-based raster band of each model band (e.g. '{example}')."
    )


def _name_key(name: str) -> str:
    """A band name compared without case and the zero of Sentinel-2 names: ``"B02"``, ``"b2"`` -> ``"b2"``.

    Sentinel-2 products name bands ``B02``... (the SAFE file names), Earth Engine and GDAL's SENTINEL2
    driver ``B2``...; ``B8A`` stays ``b8a``. Not used on rasters without band descriptions, whose
    ``B1``...``Bn`` say nothing about the bands (band 11 of 13 is B10 in product order).
    """
    s = name.strip().lower()
    m = re.fullmatch(r"b0*(\d{1,2})(a?)", s)
    return f"b{int(m.group(1))}{m.group(2)}" if m else s


def plan_sources(
    card: ModelCard, inputs: Sequence[Path], names: Sequence[Sequence[str]], band_map: Sequence[int] | None
) -> list[BandSource]:
    """The :class:`BandSource` s of the inputs, in model channel order: 1 (BCHW), T (BTCHW) or 2 (change pair).

    Args:
        card: the model card. inputs: the input rasters. names: each raster's band names.
        band_map: 1-based raster band per model band, overriding name matching (see :func:`select_bands`).

    Raises:
        InputError: wrong number of rasters for the model (time steps, pair).
        BandMismatchError: see :func:`select_bands`.
    """
    if card.indices:
        from ..preprocessing.indices import band_positions

        band_positions(card.indices, card.bands)  # BandMismatchError naming the missing band
    if card.layout == "BTCHW":
        if len(inputs) != card.time_steps:
            raise InputError(
                f"The model takes a series of {card.time_steps} dates but {len(inputs)} raster(s) were "
                "given; pass the first date as INPUT and the others, in date order, as ADDITIONAL_INPUTS."
            )
        return [_model_bands(card, t, t, names[t], inputs[t].name, band_map) for t in range(len(inputs))]
    if card.task == "change":
        return _change_sources(card, inputs, names, band_map)
    sensors = sensor_groups(card)
    if len(sensors) > 1:
        return _sensor_sources(card, sensors, inputs, names)
    if len(inputs) != 1:
        raise InputError(
            f"This model classifies one raster at a time but {len(inputs)} were given; remove the "
            "additional inputs (they are for time-series and change models)."
        )
    return [_model_bands(card, 0, 0, names[0], inputs[0].name, band_map)]


def _model_bands(
    card: ModelCard, ds_index: int, date: int, names: Sequence[str], raster_name: str, band_map: Sequence[int] | None
) -> BandSource:
    """The card's bands (and statistics) read from raster ``ds_index`` as model date ``date``."""
    bands = select_bands(card.bands, names, raster_name, band_map, card.architecture == "deepness")
    return BandSource(ds_index, bands, tuple(card.mean), tuple(card.std), date, tuple(card.bands))


def _change_sources(
    card: ModelCard, inputs: Sequence[Path], names: Sequence[Sequence[str]], band_map: Sequence[int] | None
) -> list[BandSource]:
    """The two dates of a change model: two rasters, or one composite raster holding both (ArcGIS style)."""
    b2 = card.bands2 or card.bands
    m2, s2 = (card.mean2, card.std2) if card.mean2 else (card.mean, card.std)
    if len(inputs) == 2:
        second = select_bands(b2, names[1], inputs[1].name, band_map, card.architecture == "deepness")
        return [
            _model_bands(card, 0, 0, names[0], inputs[0].name, band_map),
            BandSource(1, second, tuple(m2), tuple(s2), 1, tuple(b2)),
        ]
    if len(inputs) == 1:
        both = select_bands(
            [*card.bands, *[f"{b} (date 2)" for b in b2]], names[0], inputs[0].name, band_map, positional=True
        )
        c = len(card.bands)
        return [
            BandSource(0, both[:c], tuple(card.mean), tuple(card.std), 0, tuple(card.bands)),
            BandSource(0, both[c:], tuple(m2), tuple(s2), 1, tuple(b2)),
        ]
    raise InputError(f"A change model takes two rasters (or one two-date composite); {len(inputs)} were given.")


def sensor_groups(card: ModelCard) -> list[tuple[str, list[str]]]:
    """``[(sensor, [model band names])]`` of a multi-sensor (early fusion) model, in channel order; [] otherwise.

    Read from ``card.training["sensor_bands"]`` (written by :func:`core.training.onnx_export.card_from_manifest`
    from the chip manifest's ``sources["sensor_bands"]``, see :mod:`core.chips.export`).
    """
    groups = (card.training or {}).get("sensor_bands") or {}
    return [(str(k), list(v)) for k, v in groups.items()]


def _sensor_sources(
    card: ModelCard, sensors: list[tuple[str, list[str]]], inputs: Sequence[Path], names: Sequence[Sequence[str]]
) -> list[BandSource]:
    """One source per sensor raster (INPUT = first sensor, ADDITIONAL_INPUTS = the others, in card order).

    A sensor's model band names carry the sensor prefix (``S1_VV``); the raster's bands may be named
    with or without it.
    """
    if len(inputs) != len(sensors):
        raise InputError(
            f"The model fuses {len(sensors)} sensors ({', '.join(s for s, _ in sensors)}) but "
            f"{len(inputs)} raster(s) were given; pass the {sensors[0][0]} raster as INPUT and the "
            f"{', '.join(s for s, _ in sensors[1:])} raster(s), in this order, as ADDITIONAL_INPUTS."
        )
    out, off = [], 0
    for i, (sensor, model_names) in enumerate(sensors):
        n = len(model_names)
        low = [b.lower() for b in names[i]]
        plain = [
            b[len(sensor) + 1 :] if b.lower().startswith(sensor.lower() + "_") and b.lower() not in low else b
            for b in model_names
        ]
        bands = select_bands(plain, names[i], inputs[i].name)
        out.append(
            BandSource(
                i,
                bands,
                tuple(card.mean[off : off + n]),
                tuple(card.std[off : off + n]),
                0,
                tuple(card.bands[off : off + n]),
            )
        )
        off += n
    if off != len(card.bands):
        raise InputError(
            f"The model card lists {len(card.bands)} bands but its sensors {off}; the model file is "
            "inconsistent, export it again."
        )
    return out
