"""The provider under real headless QGIS (pytest-qgis): registration, ids, help, errors."""

from __future__ import annotations

import pytest

EXPECTED = ["exporttrainingtiles", "trainmodel", "classifypixels", "detectchange", "computeaccuracy"]


def test_provider_lists_the_five_algorithms(dlc_provider):
    assert dlc_provider.id() == "deeplandcover"
    assert dlc_provider.name() == "Deep Land Cover"
    ids = {a.name() for a in dlc_provider.algorithms()}
    missing = [a for a in EXPECTED if a not in ids]
    assert not missing, f"not registered: {missing} (see the QGIS message log for import errors)"


@pytest.mark.parametrize("name", EXPECTED)
def test_each_algorithm_has_help_group_and_parameters(dlc_provider, name):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById(f"deeplandcover:{name}")
    assert alg is not None
    assert alg.groupId() and alg.groupId() == alg.groupId().lower()
    assert len(alg.shortHelpString()) > 80
    keys = [p.name() for p in alg.parameterDefinitions()]
    assert keys and all(k == k.upper() for k in keys), keys
    ok, msg = alg.canExecute()
    assert ok, msg


def test_plugin_class_factory_registers_and_unloads(qgis_app, qgis_processing):
    from qgis.core import QgsApplication

    import deeplandcover

    reg = QgsApplication.processingRegistry()
    existing = reg.providerById("deeplandcover")
    if existing is not None:
        reg.removeProvider(existing)
    plugin = deeplandcover.classFactory(None)
    plugin.initProcessing()
    assert reg.providerById("deeplandcover") is not None
    plugin.unload()
    assert reg.providerById("deeplandcover") is None
