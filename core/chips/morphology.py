"""Morphology of label rasters: disk structuring elements, line dilation and class-edge erosion.

* Line labels (roads) are dilated by a disk of ``line_buffer_px`` pixels after rasterisation, as in
  "Deep Neural Networks for Automatic Extraction of Features in Time Series Optical Satellite
  Images", Int. Arch. Photogramm. Remote Sens. Spatial Inf. Sci., XLIII-B2-2020, 1529-1535, 2020
  (https://isprs-archives.copernicus.org/articles/XLIII-B2-2020/1529/2020/): "we used morphological
  dilation to increase the width of the road after rasterization".
* Class edges are eroded as eo-learn's ``ErosionTask`` does in Yi, Z.-F., Bollinger, D. & Peressutti,
  D. (2020), "Mapping land use and land cover changes faster and at scale with deep learning on the
  cloud", Development Seed / Sinergise: a pixel keeps its class only when every pixel within
  ``edge_erosion_px`` (disk) has the same class; class edges and 1-px artefacts become 255. The
  raster border is not an edge (values are extended outwards).

All arrays are ``(H, W)`` uint8 with :data:`~core.classes.IGNORE_INDEX` (255) for "no label".
"""

from __future__ import annotations

import numpy as np

from ..classes import IGNORE_INDEX


def disk(radius: int) -> np.ndarray:
    """``(2r+1, 2r+1)`` bool disk structuring element (pixels with distance <= r)."""
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return (x * x + y * y) <= radius * radius


def dilate_lines(lines: np.ndarray, radius: int) -> np.ndarray:
    """Dilate every class of a line-label array by a disk of ``radius`` pixels (see the module docstring).

    Args:
        lines: ``(H, W)`` uint8, IGNORE_INDEX where no line.
        radius: dilation radius in pixels (0 returns the input).

    Returns:
        ``(H, W)`` uint8; where dilated classes meet, the higher class value wins.
    """
    if radius <= 0:
        return lines
    from scipy import ndimage

    out = np.full_like(lines, IGNORE_INDEX)
    for v in np.unique(lines):
        if v == IGNORE_INDEX:
            continue
        out[ndimage.binary_dilation(lines == v, structure=disk(radius))] = v
    return out


def erode_edges(labels: np.ndarray, radius: int) -> np.ndarray:
    """Set pixels within ``radius`` px of a class edge to IGNORE_INDEX (eo-learn ``ErosionTask``).

    A pixel keeps its value when the minimum and maximum over its disk neighbourhood both equal it;
    the neighbourhood is extended past the array border by edge replication (``mode="nearest"``).

    Args:
        labels: ``(H, W)`` uint8 with IGNORE_INDEX for no label (unlabelled areas also erode classes).
        radius: erosion radius in pixels (0 returns the input).

    Returns:
        ``(H, W)`` uint8.
    """
    if radius <= 0:
        return labels
    from scipy import ndimage

    fp = disk(radius)
    lo = ndimage.minimum_filter(labels, footprint=fp, mode="nearest")
    hi = ndimage.maximum_filter(labels, footprint=fp, mode="nearest")
    return np.where((lo == labels) & (hi == labels), labels, np.uint8(IGNORE_INDEX)).astype(np.uint8)
