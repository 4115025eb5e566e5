"""algorithms.classify_batch: Classify Pixels (Batch, Dask)'s parameters -> the plan of the core call.

Running it on a Dask cluster is tested with the batch runner (tests/inference/batch/test_run.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def alg(qgis_app):
    from deeplandcover.algorithms.classify_batch import ClassifyBatchAlgorithm

    a = ClassifyBatchAlgorithm()
    a.initAlgorithm()
    return a


def test_plan_carries_blocks_workers_tiling_and_defaults(alg, tmp_path):
    from qgis.core import QgsProcessingContext

    params = {
        "INPUT_FOLDER": str(tmp_path),
        "PATTERN": " T33*.jp2 ",
        "MODEL": str(tmp_path / "m.onnx"),
        "SCHEDULER": "  ",
        "WORKERS": 3,
        "BLOCK_SIZE": 4096,
        "TILE_SIZE": 256,
        "OVERLAP": 32,
        "BATCH_SIZE": 8,
        "OVERWRITE": True,
        "OUTPUT_FOLDER": str(tmp_path / "out"),
    }
    p = alg.plan(params, QgsProcessingContext())
    assert (p.inputs, p.model, p.out_dir) == (str(tmp_path), str(tmp_path / "m.onnx"), str(tmp_path / "out"))
    assert p.options.scheduler is None and p.options.n_workers == 3 and p.options.block_size == 4096
    assert p.options.overwrite and p.options.pattern == "T33*.jp2"
    assert (p.classify.tile_size, p.classify.overlap, p.classify.batch_size) == (256, 32, 8)
    params.update(WORKERS=0, BLOCK_SIZE=0, TILE_SIZE=0, SCHEDULER="tcp://h:8786", PATTERN="")
    p = alg.plan(params, QgsProcessingContext())
    assert p.options.n_workers is None and p.options.block_size is None and p.classify.tile_size is None
    assert p.options.scheduler == "tcp://h:8786" and p.options.pattern == "*.tif"


def test_missing_input_folder_is_named(alg, tmp_path):
    from qgis.core import QgsProcessingContext

    from deeplandcover.core.errors import InputError

    with pytest.raises(InputError, match="nowhere' does not exist; choose the folder"):
        alg.plan({"INPUT_FOLDER": str(tmp_path / "nowhere"), "MODEL": "m.onnx"}, QgsProcessingContext())


def test_public_ids_and_advanced_parameters(alg):
    from deeplandcover.algorithms.qtcompat import PARAMETER_FLAG_ADVANCED

    keys = [p.name() for p in alg.parameterDefinitions()]
    assert keys[:4] == ["INPUT_FOLDER", "PATTERN", "MODEL", "OUTPUT_FOLDER"]
    advanced = {p.name() for p in alg.parameterDefinitions() if p.flags() & PARAMETER_FLAG_ADVANCED}
    assert {"SCHEDULER", "WORKERS", "BLOCK_SIZE", "TILE_SIZE", "OVERLAP", "BATCH_SIZE", "OVERWRITE"} <= advanced
    assert alg.name() == "classifybatch" and alg.groupId() == "inference"
