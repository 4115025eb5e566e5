"""core.training.checkpoint: the checkpoint of a run's state, saving and loading, resume and fine-tune checks."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from deeplandcover.core.classes import ClassInfo
from deeplandcover.core.errors import InputError, ModelFileError
from deeplandcover.core.feedback import NullFeedback
from deeplandcover.core.modelcard import ModelCard
from deeplandcover.core.training.checkpoint import (
    CKPT_FORMAT,
    NetworkSpec,
    Progress,
    apply_finetune,
    check_resume,
    load_checkpoint,
    make_checkpoint,
    restore_weights,
    save_checkpoint,
)
from deeplandcover.core.training.config import TrainConfig
from deeplandcover.core.training.steps import Optimisation, make_scheduler
from deeplandcover.models import build_model

SPEC = NetworkSpec("unet", 3, 2, {"base_filters": 4, "depth": 2})


def _run_state(spec: NetworkSpec = SPEC):
    torch.manual_seed(0)
    model = build_model(spec.architecture, spec.in_channels, spec.num_classes, **spec.arch_params)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    cfg = TrainConfig(epochs=4)
    optim = Optimisation(opt, make_scheduler(opt, cfg, "max"), torch.amp.GradScaler("cpu", enabled=False))
    progress = Progress(
        lr=1e-3, batch_size=4, epoch=2, best_epoch=1, best_score=0.5, bad_epochs=1, history=[{"epoch": 1}]
    )
    card = ModelCard("unet", ["B1", "B2", "B3"], [0.0] * 3, [1.0] * 3, [ClassInfo(1, "a"), ClassInfo(2, "b")])
    return model, optim, progress, cfg, card


def test_a_checkpoint_holds_the_network_spec_and_the_run_state_and_reads_back(tmp_path) -> None:
    model, optim, progress, cfg, card = _run_state()
    ck = make_checkpoint(model, SPEC, optim, progress, cfg, card)
    assert ck["format"] == CKPT_FORMAT and ck["architecture"] == "unet"
    assert (ck["in_channels"], ck["num_classes"], ck["arch_params"]) == (3, 2, {"base_filters": 4, "depth": 2})
    assert ck["config"]["epochs"] == 4 and ck["card"]["bands"] == ["B1", "B2", "B3"]
    assert set(ck["optimizer"]) == {"state", "param_groups"} and "lr_lambdas" in ck["scheduler"]
    save_checkpoint(tmp_path / "model.pt", ck)
    back = load_checkpoint(tmp_path / "model.pt")
    assert Progress.from_checkpoint(back) == progress
    for k, v in model.state_dict().items():
        assert torch.equal(back["state_dict"][k], v), k
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically: nothing but the file


def test_progress_records_the_best_epoch_with_min_delta() -> None:
    p = Progress(lr=1e-3, batch_size=4)
    assert p.record(1, 0.50, 0.01) and (p.best_epoch, p.bad_epochs) == (1, 0)
    assert not p.record(2, 0.505, 0.01) and (p.best_epoch, p.bad_epochs) == (1, 1)  # within min_delta
    assert p.record(3, 0.52, 0.01) and (p.best_epoch, p.best_score, p.bad_epochs) == (3, 0.52, 0)
    assert Progress(None, 2).best_score == -math.inf


def test_resume_is_refused_for_another_network(tmp_path) -> None:
    model, optim, progress, cfg, card = _run_state()
    ck = make_checkpoint(model, SPEC, optim, progress, cfg, card)
    check_resume(ck, SPEC)
    for other in (dataclasses.replace(SPEC, in_channels=4), dataclasses.replace(SPEC, num_classes=3)):
        with pytest.raises(InputError, match="does not fit"):
            check_resume(ck, other)


def test_restore_weights_resumes_or_fine_tunes_or_does_nothing(tmp_path) -> None:
    model, optim, progress, cfg, card = _run_state()
    save_checkpoint(tmp_path / "model.pt", make_checkpoint(model, SPEC, optim, progress, cfg, card))
    torch.manual_seed(1)
    fresh = build_model("unet", 3, 2, base_filters=4, depth=2)
    assert restore_weights(fresh, TrainConfig(), SPEC, NullFeedback()) is None  # a new run
    ck = restore_weights(fresh, TrainConfig(resume=str(tmp_path / "model.pt")), SPEC, NullFeedback())
    assert ck is not None and ck["epoch"] == 2
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    # fine-tune onto three classes: the head keeps its fresh weights, the rest is loaded, and it returns None
    torch.manual_seed(2)
    three = build_model("unet", 3, 3, base_filters=4, depth=2)
    head = {k: v.clone() for k, v in three.state_dict().items() if v.shape != model.state_dict()[k].shape}
    assert (
        head and restore_weights(three, TrainConfig(finetune=str(tmp_path / "model.pt")), SPEC, NullFeedback()) is None
    )
    own = three.state_dict()
    assert all(torch.equal(own[k], v) for k, v in head.items())
    assert all(torch.equal(own[k], v) for k, v in model.state_dict().items() if k not in head)


def test_fine_tuning_from_another_architecture_or_a_missing_file_is_refused(tmp_path) -> None:
    model, optim, progress, cfg, card = _run_state()
    ck = make_checkpoint(model, SPEC, optim, progress, cfg, card)
    with pytest.raises(InputError, match="choose that architecture"):
        apply_finetune(model, ck, "deeplabv3plus", NullFeedback())
    with pytest.raises(ModelFileError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(ModelFileError, match=r"model\.pt"):
        load_checkpoint(tmp_path / "model.onnx")  # an .onnx needs the checkpoint beside it
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFileError, match="not a readable"):
        load_checkpoint(tmp_path / "junk.pt")
