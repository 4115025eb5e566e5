"""Processing algorithm deeplandcover:trainmodel: parameters -> TrainPlan, a real run, failed runs."""

from __future__ import annotations

import pytest
import torch
from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

from deeplandcover.algorithms.train_model import TrainModelAlgorithm, TrainPlan, split_folders
from deeplandcover.core.training.config import TrainConfig

from ..helpers.chips import make_chip_folder

torch.set_num_threads(2)


def _params(**kw):
    v = {
        "INPUT": "/chips/a",
        "ADDITIONAL_INPUTS": "/chips/b; /chips/a",
        "OUTPUT_FOLDER": "/runs/one",
        "ARCHITECTURE": 1,
        "BACKBONE": 3,
        "MONITOR": 1,
        "CLASS_WEIGHTS": 2,
        "LOSS": 1,
        "DEVICE": 1,
        "BASE_FILTERS": 16,
        "DEPTH": 3,
        "EPOCHS": 7,
        "BATCH_SIZE": 4,
        "PATIENCE": 2,
        "SEED": 7,
        "VALIDATION_FRACTION": 0.3,
        "MIN_DELTA": 0.01,
        "JACCARD_ALPHA": 0.7,
        "LEARNING_RATE": None,
        "AUGMENT": False,
        "RESUME": None,
        "FINETUNE": "/x/model.onnx",
    }
    return {**v, **kw}


def _plan(**kw) -> TrainPlan:
    alg = TrainModelAlgorithm()
    alg.initAlgorithm()
    return alg.plan(_params(**kw), QgsProcessingContext())


def test_config_plan(qgis_app):
    p = _plan()
    assert p == TrainPlan(
        ["/chips/a", "/chips/b"],
        "/runs/one",
        TrainConfig(
            architecture="deeplabv3plus",
            backbone="resnet50",
            monitor="miou",
            class_weights="median",
            loss="ce_jaccard",
            device="cpu",
            base_filters=16,
            depth=3,
            epochs=7,
            batch_size=4,
            patience=2,
            seed=7,
            val_fraction=0.3,
            min_delta=0.01,
            jaccard_alpha=0.7,
            lr=None,
            augment=False,
            resume=None,
            finetune="/x/model.onnx",
            schedule="cosine",  # SCHEDULE left out: the default
            warmup_epochs=1,
            indices="",
            sequence_length=0,
            random_sequences=False,
        ),
    )
    c = p.config
    assert (c.architecture, c.backbone, c.monitor, c.class_weights, c.loss, c.device) == (
        "deeplabv3plus",
        "resnet50",
        "miou",
        "median",
        "ce_jaccard",
        "cpu",
    )
    assert c.lr is None and c.epochs == 7 and c.jaccard_alpha == 0.7 and c.augment is False
    assert c.finetune == "/x/model.onnx" and c.resume is None and c.model_params() == {"backbone": "resnet50"}
    assert _plan(LEARNING_RATE=0.01, ARCHITECTURE=0).config.lr == 0.01
    assert _plan(ARCHITECTURE=0, BACKBONE=0).config.model_params() == {"base_filters": 16, "depth": 3}
    assert _plan(ARCHITECTURE=0).config.model_params() == {"backbone": "resnet50"}  # U-Net on a ResNet-50
    c = _plan(ENCODER_WEIGHTS=" ssl4eo_s12_resnet50_moco ", EXTRA_BAND_INIT=1, FREEZE_EPOCHS=3).config
    assert (c.encoder_weights, c.extra_band_init, c.freeze_epochs) == ("ssl4eo_s12_resnet50_moco", "red", 3)
    assert c.encoder_lr_factor == 0.1 and c.num_threads is None and _plan(THREADS=1).config.num_threads == 1


def test_parameters_left_out_take_the_train_config_defaults(qgis_app):
    alg = TrainModelAlgorithm()
    alg.initAlgorithm()
    plan = alg.plan({"INPUT": "/chips/a", "OUTPUT_FOLDER": "/runs/one"}, QgsProcessingContext())
    assert plan.config == TrainConfig()
    cleared = alg.plan({"INPUT": "/c", "OUTPUT_FOLDER": "/o", "LEARNING_RATE": None}, QgsProcessingContext())
    assert cleared.config.lr is None  # an emptied field runs the LR range test


def test_enum_options_are_the_config_choices(qgis_app):
    from deeplandcover.algorithms.train_choices import CHOICE_LABELS
    from deeplandcover.core.training.config import CHOICES

    alg = TrainModelAlgorithm()
    alg.initAlgorithm()
    for key, field in alg.ENUMS.items():
        options = alg.parameterDefinition(key).options()
        assert options == [CHOICE_LABELS[v] for v in CHOICES[field]], key  # one label per choice, same order
        assert all("_" not in o for o in options), options  # human words, not identifiers
        assert CHOICES[field][alg.parameterDefinition(key).defaultValue()] == getattr(TrainConfig(), field), key
    # the indices scripts pass are those of CHOICES (e.g. the demo's ARCHITECTURE=3, LOSS=1, SCHEDULE=1)
    assert (
        _plan(ARCHITECTURE=3, LOSS=1, SCHEDULE=1, CLASS_WEIGHTS=2, MONITOR=0).config.architecture == "unet_early_fusion"
    )
    c = _plan(ARCHITECTURE=2, LOSS=1, SCHEDULE=0, CLASS_WEIGHTS=2, MONITOR=0).config
    assert (c.architecture, c.loss, c.schedule, c.class_weights, c.monitor) == (
        "unet_convlstm",
        "ce_jaccard",
        "plateau",
        "median",
        "val_loss",
    )
    assert [_plan(DEVICE=i).config.device for i in range(3)] == list(CHOICES["device"]) == ["auto", "cpu", "cuda"]


def test_encoder_weights_dropdown_file_and_old_text(qgis_app, tmp_path):
    from deeplandcover.algorithms.train_choices import WEIGHTS_CHOICES
    from deeplandcover.core.training.weights_catalog import CATALOG

    alg = TrainModelAlgorithm()
    alg.initAlgorithm()
    options = alg.parameterDefinition("ENCODER_WEIGHTS").options()
    assert len(options) == len(CATALOG) + 1 and options[0] == "Default of the architecture"
    assert "SSL4EO ResNet-50 (Sentinel-2)" in options and "ImageNet ResNet-18 (RGB)" in options
    assert alg.parameterDefinition("ENCODER_WEIGHTS").defaultValue() == 0
    assert _plan().config.encoder_weights == ""
    index = WEIGHTS_CHOICES.index("imagenet_resnet34")
    assert _plan(ENCODER_WEIGHTS=index).config.encoder_weights == "imagenet_resnet34"
    pth = str(tmp_path / "enc.pth")
    assert _plan(ENCODER_WEIGHTS=index, ENCODER_WEIGHTS_FILE=pth).config.encoder_weights == pth  # the file wins
    # the free text of scripts written before the dropdown
    assert _plan(ENCODER_WEIGHTS=pth).config.encoder_weights == pth
    assert _plan(ENCODER_WEIGHTS=" none ").config.encoder_weights == ""
    assert _plan(ENCODER_WEIGHTS="").config.encoder_weights == ""
    ok, msg = alg.checkParameterValues(_params(ENCODER_WEIGHTS="imagenet_resnet50"), QgsProcessingContext())
    assert ok, msg


def test_device_dropdown_and_patience_default(qgis_app):
    from deeplandcover.algorithms.parameters import DEVICE_LABELS

    alg = TrainModelAlgorithm()
    alg.initAlgorithm()
    assert alg.parameterDefinition("DEVICE").options() == list(DEVICE_LABELS)  # the dropdown of every algorithm
    assert _plan(DEVICE=3).config.device == "cuda"  # TensorRT runs models; training uses CUDA
    assert _plan(DEVICE="cuda").config.device == "cuda" and _plan(DEVICE=" CPU ").config.device == "cpu"
    ok, msg = alg.checkParameterValues(_params(DEVICE="cuda:1"), QgsProcessingContext())
    assert not ok and "Device 'cuda:1' is unknown" in msg
    assert alg.parameterDefinition("PATIENCE").defaultValue() < alg.parameterDefinition("EPOCHS").defaultValue()


def test_split_folders():
    assert split_folders("/a", " /b ; ;/a;/c") == ["/a", "/b", "/c"]


def test_parameters_declared():
    alg = TrainModelAlgorithm()
    alg.initAlgorithm()
    assert alg.name() == "trainmodel" and alg.groupId() == "training"
    names = {p.name() for p in alg.parameterDefinitions()}
    for key in (
        "INPUT",
        "ADDITIONAL_INPUTS",
        "ARCHITECTURE",
        "BACKBONE",
        "BASE_FILTERS",
        "DEPTH",
        "EPOCHS",
        "BATCH_SIZE",
        "LEARNING_RATE",
        "VALIDATION_FRACTION",
        "PATIENCE",
        "MIN_DELTA",
        "MONITOR",
        "CLASS_WEIGHTS",
        "LOSS",
        "JACCARD_ALPHA",
        "AUGMENT",
        "SEED",
        "DEVICE",
        "RESUME",
        "FINETUNE",
        "OUTPUT_FOLDER",
    ):
        assert key in names, key
    outs = {o.name() for o in alg.outputDefinitions()}
    assert {"OUTPUT_MODEL", "OUTPUT_FOLDER", "REPORT", "VAL_OA", "VAL_MIOU"} <= outs


def test_run(qgis_app, tmp_path):
    make_chip_folder(tmp_path / "a", "single", grid=(3, 3), tile=16, block=1)
    make_chip_folder(tmp_path / "b", "single", grid=(2, 3), tile=16, block=1, seed=3)
    alg = TrainModelAlgorithm()
    alg.initAlgorithm()
    params = {
        "INPUT": str(tmp_path / "a"),
        "ADDITIONAL_INPUTS": str(tmp_path / "b"),
        "ARCHITECTURE": 0,
        "BASE_FILTERS": 8,
        "DEPTH": 2,
        "EPOCHS": 1,
        "BATCH_SIZE": 4,
        "LEARNING_RATE": 0.003,
        "DEVICE": 1,
        "OUTPUT_FOLDER": str(tmp_path / "out"),
    }
    res, ok = alg.run(params, QgsProcessingContext(), QgsProcessingFeedback())
    assert ok, res
    assert res["OUTPUT_MODEL"].endswith("model.onnx") and (tmp_path / "out" / "model.onnx").is_file()
    assert 0 <= res["VAL_OA"] <= 1 and 0 <= res["VAL_MIOU"] <= 1 and res["REPORT"].endswith("report.html")

    bad = dict(params, INPUT=str(tmp_path / "missing"), ADDITIONAL_INPUTS="")
    res, ok = alg.run(bad, QgsProcessingContext(), QgsProcessingFeedback())
    assert not ok
    with pytest.raises(QgsProcessingException, match="does not exist"):  # the message users see
        alg.processAlgorithm(bad, QgsProcessingContext(), QgsProcessingFeedback())


def test_failed_run_leaves_no_output_folder(qgis_app, tmp_path):
    # Train Model creates its output folder only once training starts (not a chip folder: it never does)
    (tmp_path / "not_chips").mkdir()
    alg = TrainModelAlgorithm()
    alg.initAlgorithm()
    params = {"INPUT": str(tmp_path / "not_chips"), "EPOCHS": 1, "DEVICE": 1, "OUTPUT_FOLDER": str(tmp_path / "out")}
    res, ok = alg.run(params, QgsProcessingContext(), QgsProcessingFeedback())
    assert not ok
    assert not (tmp_path / "out").exists()
