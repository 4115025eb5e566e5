"""``tools/dev/make_workflow_model.py``: the shipped workflow model (resources/models/landcover_workflow.model3)
is exactly what the generator makes from the algorithms now, and its input checks hold for every shipped model.

The model itself as an analyst opens and runs it is tested in tests/integration/test_workflow_model.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deeplandcover.tests.helpers.qgis_env import REPO, load_model3
from deeplandcover.tools.dev import make_workflow_model

MODEL = REPO / "resources" / "models" / "landcover_workflow.model3"
MODELS = sorted((REPO / "resources" / "models").glob("*.model3"))


def _kind(source) -> int:
    """The source kind as an int (0 model input, 1 child output, 2 value, ...), on Qt5 and Qt6 enums."""
    kind = source.source()
    return int(getattr(kind, "value", kind))


def _wiring(path: Path) -> dict[str, dict[str, tuple]]:
    """Child id -> parameter key -> its sources: the model input or child output it comes from, or the kind."""
    out = {}
    for cid, child in load_model3(path).childAlgorithms().items():
        out[cid] = {
            key: tuple(
                (_kind(s), s.parameterName(), s.outputChildId(), s.outputName()) if _kind(s) in (0, 1) else (_kind(s),)
                for s in sources
            )
            for key, sources in child.parameterSources().items()
        }
    return out


def test_shipped_model_is_what_the_generator_makes(dlc_provider, tmp_path):
    """The committed file follows the algorithms: regenerate it after a parameter change.

    Byte for byte on the QGIS that writes it (3.22, the CI host, as `make setup` installs); on newer QGIS
    (3.40, 3.44 write some default values in other forms) every child sets the same parameters from the
    same sources.
    """
    from qgis.core import Qgis

    fresh = tmp_path / MODEL.name
    make_workflow_model.generate(fresh)
    hint = (
        f"{MODEL.relative_to(REPO)} is out of date: run "
        "`QT_QPA_PLATFORM=offscreen .venv/bin/python -m deeplandcover.tools.dev.make_workflow_model`"
    )
    if Qgis.QGIS_VERSION_INT < 32400:
        assert fresh.read_bytes() == MODEL.read_bytes(), hint
    assert _wiring(fresh) == _wiring(MODEL), hint


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_no_field_input_under_a_raster_capable_layer(dlc_provider, path):
    assert make_workflow_model.check_inputs(load_model3(path)) == []


def test_generator_inputs_are_the_models_in_workflow_order(dlc_provider):
    model = load_model3(MODEL)
    names = [p.name() for p in model.parameterDefinitions()]  # the run dialog's order
    assert names == [i.name for i in make_workflow_model.INPUTS]


def test_generator_refuses_a_field_under_a_raster_input(dlc_provider, monkeypatch):
    spec = make_workflow_model.Input
    broken = [spec("labels", "Labels", "raster"), *make_workflow_model.INPUTS[2:]]
    broken.insert(0, make_workflow_model.INPUTS[0])
    monkeypatch.setattr(make_workflow_model, "INPUTS", broken)
    with pytest.raises(make_workflow_model.ModelError, match="class_field: parent labels is a raster input"):
        make_workflow_model.build()
