"""Building the Dynamic World ONNX model from the authors' checkpoint: download from file:// URLs, errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from deeplandcover.core.errors import ModelFileError
from deeplandcover.core.inference.catalog import DYNAMICWORLD_BUILD
from deeplandcover.core.training import dynamicworld as build

from ..helpers.dynamicworld_weights import dynamicworld_variables


@pytest.fixture(scope="module")
def variables() -> Path:
    return dynamicworld_variables()


def test_checkpoint_download_from_file_urls(variables, tmp_path, monkeypatch):
    files = tuple(replace(e, url=(variables / e.url.rsplit("/", 1)[1]).as_uri()) for e in build.CHECKPOINT_FILES)
    monkeypatch.setattr(build, "CHECKPOINT_FILES", files)
    folder, digests = build.checkpoint_folder(weights_dir=tmp_path / "weights")
    assert folder == tmp_path / "weights" / build.SUBFOLDER
    assert sorted(p.name for p in folder.iterdir()) == sorted(digests)
    broken = tuple(replace(e, url=(tmp_path / "nowhere").as_uri()) for e in files)
    monkeypatch.setattr(build, "CHECKPOINT_FILES", broken)
    with pytest.raises(ModelFileError, match="copy it to"):
        build.build_onnx(tmp_path / "dw.onnx", DYNAMICWORLD_BUILD, weights_dir=tmp_path / "empty")
    assert not (tmp_path / "dw.onnx").exists()
