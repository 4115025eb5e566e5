"""core.inference.catalog: catalogue names, where ready-made models are kept, name -> file.

Making the Dynamic World file from the authors' weights (and reusing it) is tested with the network in
tests/models/test_dynamicworld.py and through load_model in tests/inference/test_model.py.
"""

from __future__ import annotations

import sys

from deeplandcover.core.inference import catalog


def test_catalogue_names_are_case_insensitive_and_a_file_of_that_name_wins(tmp_path, monkeypatch):
    assert catalog.is_catalog_model("dynamicworld") and catalog.is_catalog_model(" DynamicWorld ")
    assert not catalog.is_catalog_model("model.onnx") and not catalog.is_catalog_model(tmp_path / "dynamicworld2")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dynamicworld").write_bytes(b"a user's own file")
    assert not catalog.is_catalog_model("dynamicworld")  # the user's file, not the catalogue's model


def test_resolve_model_leaves_files_alone(tmp_path):
    path = tmp_path / "model.onnx"
    assert catalog.resolve_model(path) is path and catalog.resolve_model(str(path)) == str(path)


def test_models_dir_is_the_environment_folder_or_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLC_MODELS_DIR", str(tmp_path / "models"))
    assert catalog.models_dir() == tmp_path / "models"
    monkeypatch.delenv("DLC_MODELS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if sys.platform.startswith("linux"):  # Windows and macOS have their own user cache folders
        assert catalog.models_dir() == tmp_path / "cache" / "deeplandcover" / "models"
    assert catalog.models_dir().parts[-2:] == ("deeplandcover", "models")


def test_a_cached_file_that_is_not_a_current_build_is_not_reused(tmp_path):
    stale = tmp_path / "dynamicworld.onnx"
    stale.write_bytes(b"not an onnx model")
    assert not catalog._current(stale)
