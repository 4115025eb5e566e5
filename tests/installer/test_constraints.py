"""Tests of installer.constraints: pins of the distributions QGIS's Python provides."""

from __future__ import annotations

from deeplandcover.core import deps
from deeplandcover.installer import constraints

from .installer_helpers import fake_dist, isolated  # noqa: F401  (fixtures)


def test_constraints_pin_every_provided_distribution_and_skip_unusable_versions(tmp_path):
    qgis_site, user_site, target = tmp_path / "dist-packages", tmp_path / "user", tmp_path / "target"
    fake_dist(qgis_site, "numpy", "1.24.2")
    fake_dist(qgis_site, "GDAL", "3.6.2")
    fake_dist(qgis_site, "PyQt5", "5.15.9")
    fake_dist(qgis_site, "PyQt5_sip", "12.11.1")
    fake_dist(qgis_site, "lz4", "4.0.2+dfsg")
    fake_dist(qgis_site, "kiwisolver", "0+unknown")
    fake_dist(qgis_site, "weird", "1.0~rc1")
    fake_dist(user_site, "numpy", "1.26.4")  # first on the path wins, as for import
    fake_dist(target, "onnxruntime", "1.20.0")  # the plugin's own folder is not pinned

    text = constraints.constraints_text(path=[str(user_site), str(qgis_site), str(target)], exclude=[target])
    pins = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert pins == ["GDAL==3.6.2", "lz4==4.0.2+dfsg", "numpy==1.26.4", "PyQt5==5.15.9", "PyQt5_sip==12.11.1"]
    comment = next(line for line in text.splitlines() if line.startswith("# Not pinned"))
    assert "kiwisolver '0+unknown'" in comment and "weird '1.0~rc1'" in comment

    from packaging.requirements import Requirement  # every pin is a valid requirement for pip

    assert [str(Requirement(p).specifier) for p in pins][0] == "==3.6.2"
    written = constraints.write_constraints(tmp_path / "c" / "constraints.txt", path=[str(qgis_site)])
    assert "numpy==1.24.2" in written.read_text()


def test_constraints_of_the_running_python_pin_numpy_and_gdal():
    import numpy

    text = constraints.constraints_text()
    assert f"numpy=={numpy.__version__}\n" in text
    gdal = constraints.provided_distributions().get("gdal")
    if gdal is not None and deps.pinnable_version(gdal.version):
        assert f"{gdal.name}=={gdal.version}\n" in text
