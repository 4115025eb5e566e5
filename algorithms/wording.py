"""Wording: the labels users see in messages instead of parameter ids, and warnings about CRS units.

Core names parameters by their ids (``TILE_SIZE``), which scripts use; the dialog shows labels ("Tile size").
:func:`speak_labels` rewrites a message for the dialog's user; :func:`geographic_warning` says when a distance
in CRS units is in degrees.
"""

from __future__ import annotations

import os
import re

from qgis.core import QgsCoordinateReferenceSystem
from qgis.PyQt.QtCore import QCoreApplication


def _tr(text: str) -> str:
    return QCoreApplication.translate("DeepLandCover", text)


def geographic_warning(crs: QgsCoordinateReferenceSystem, label: str, value: float) -> str | None:
    """A warning when a distance in CRS units (``label`` = ``value``) is in degrees because ``crs`` is geographic."""
    if not value or not crs.isValid() or not crs.isGeographic():
        return None
    return _tr(
        "{label} is {value} in the units of {crs}, which is geographic: that is {value} degrees (about {km:.0f} km "
        "at the equator). Reproject the raster to a projected CRS (e.g. UTM) to give it in metres."
    ).format(label=label, value=value, crs=crs.authid() or crs.description(), km=value * 111.32)


def short_label(description: str) -> str:
    """A parameter's label without its parenthesised details: ``"Tile size (px, 0 = model's)"`` -> ``"Tile size"``."""
    return re.sub(r"\s*\([^)]*\)", "", description).strip(" :") or description


def speak_labels(text: str, definitions) -> str:
    """``text`` with every parameter id of ``definitions`` (``TILE_SIZE``) replaced by its quoted short label
    (``"Tile size"``): core's messages name parameters by id, the dialog shows labels."""
    labels = {d.name(): short_label(d.description()) for d in definitions}
    if not labels or not text:
        return text
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, labels), key=len, reverse=True)) + r")\b")
    return pattern.sub(lambda m: f'"{labels[m.group(1)]}"', text)


def temporary_output_warning(path: str, what: str) -> str | None:
    """A warning when an output ``path`` lies in QGIS's temporary folder, which QGIS deletes when it closes."""
    from qgis.core import QgsProcessingUtils

    tmp = QgsProcessingUtils.tempFolder()
    if not path or not tmp or not os.path.abspath(path).startswith(os.path.abspath(tmp) + os.sep):
        return None
    return _tr(
        "{what} went to a temporary folder that QGIS deletes when it closes ({path}): copy it, or choose an "
        "output folder to keep it."
    ).format(what=what, path=path)
