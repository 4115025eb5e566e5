"""algorithms.geolibs: which extension modules of the geospatial wheels are loaded with RTLD_DEEPBIND."""

from __future__ import annotations

import sys

from deeplandcover.algorithms import geolibs


def _package(root, name, wheel):
    pkg = root / name
    (pkg / "sub").mkdir(parents=True)
    (pkg / "tests").mkdir()
    (pkg / "__init__.py").write_text("")
    for so in ("_core.cpython-311-x86_64-linux-gnu.so", "sub/_io.abi3.so", "tests/_t.so"):
        (pkg / so).write_bytes(b"")
    if wheel:
        (root / f"{name}.libs").mkdir()
    return pkg


def test_only_a_wheel_with_bundled_libraries_is_isolated(tmp_path, monkeypatch):
    _package(tmp_path, "dlcgeowheel", wheel=True)
    _package(tmp_path, "dlcgeodeb", wheel=False)  # a distribution package, linked to the system libraries
    monkeypatch.syspath_prepend(str(tmp_path))
    assert geolibs._extension_modules("dlcgeowheel") == ["dlcgeowheel._core", "dlcgeowheel.sub._io"]
    assert geolibs._extension_modules("dlcgeodeb") == []
    assert geolibs._extension_modules("dlc_no_such_package") == []
    for name in ("dlcgeowheel", "dlcgeodeb"):
        sys.modules.pop(name, None)


def test_isolation_runs_once_and_only_on_linux(monkeypatch):
    monkeypatch.setattr(geolibs, "_done", True)
    assert geolibs.isolate_geolibs() == []
    monkeypatch.setattr(geolibs, "_done", False)
    monkeypatch.setattr(sys, "platform", "win32")
    assert geolibs.isolate_geolibs() == [] and geolibs._done is False
