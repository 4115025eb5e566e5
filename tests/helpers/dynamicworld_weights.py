"""The Dynamic World checkpoint of the offline weights folder, shared by the models and training tests."""

from __future__ import annotations

from pathlib import Path

from deeplandcover.core.training import dynamicworld as build
from deeplandcover.core.training.weights_catalog import cache_dir


def dynamicworld_variables() -> Path:
    """The authors' checkpoint folder under ``$DLC_WEIGHTS_DIR``; missing weights are an error, not a skip.

    Raises FileNotFoundError naming the folder and how to fill it.
    """
    folder = cache_dir() / build.SUBFOLDER
    if not (folder / "variables.index").is_file():
        raise FileNotFoundError(
            f"No Dynamic World checkpoint in {folder}: set DLC_WEIGHTS_DIR to the offline weights folder "
            "(CI: ../shared/weights, holding dynamicworld/forward/variables/variables.index and .data-00000-of-00001), "
            "or run `make data` on a machine with internet."
        )
    return folder
