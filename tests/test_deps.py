"""core.deps: version parsing, messages and install hints."""

from __future__ import annotations

import importlib.metadata as md

import pytest

from deeplandcover.core import deps
from deeplandcover.core.errors import DependencyError


def test_installed_requirements_pass():
    assert deps.check(deps.INFERENCE) == []
    assert deps.check(deps.TRAINING) == []


def test_too_old_and_missing_are_named():
    too_new_needed = deps.Requirement("numpy", ("numpy",), "99.0")
    absent = deps.Requirement("nosuchpkg", ("nosuchpkg", "nosuchpkg-gpu"), "1.0")
    problems = deps.missing((too_new_needed, absent))
    assert any("numpy" in p and "too old" in p for p in problems)
    assert any("nosuchpkg is not installed" in p for p in problems)
    with pytest.raises(DependencyError, match=r"nosuchpkg is not installed.*Install them") as e:
        deps.check((too_new_needed, absent), "Test")
    assert deps.INSTALLER_ALGORITHM in str(e.value)


def test_upper_bound_carries_its_reason():
    req = deps.Requirement("numpy", ("numpy",), "1.0", "1.1", max_reason="measured: breaks X")
    assert "too new" in deps.missing((req,))[0]
    assert "measured: breaks X" in deps.missing((req,))[0]


def test_no_upper_bound_on_any_requirement():
    """NumPy 1 and 2, affine 2 and 3 ...: a cap needs a measured reason beside it (there is none today)."""
    for group in (deps.INFERENCE, deps.VECTOR, deps.TRAINING, deps.METRICS, deps.BATCH):
        for req in group:
            assert req.max_version is None or req.max_reason, req


def test_requirement_files_have_no_unexplained_cap():
    """Every `<` in a requirements file has a comment on the same line or the line above."""
    from pathlib import Path

    for path in Path(__file__).resolve().parents[1].glob("requirements*.txt"):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            spec = line.split("#", 1)[0]
            if "<" in spec:
                assert "#" in line or lines[i - 1].lstrip().startswith("#"), f"{path.name}: {line}"


@pytest.mark.parametrize(
    "version, parsed",
    [
        ("2.2.4", (2, 2, 4)),
        ("1.26.4", (1, 26, 4)),
        ("2.1.0rc1", (2, 1, 0)),
        ("2.6.0+dfsg", (2, 6, 0)),
        ("0+unknown", None),
        ("0.0.0", None),
        ("unknown", None),
        ("", None),
        ("0.13.2", (0, 13, 2)),
    ],
)
def test_parse_version(version, parsed):
    assert deps.parse_version(version) == parsed


def test_unparsable_version_warns_instead_of_refusing(monkeypatch):
    """Debian forky's python3-shapely 2.2 says its version is `0+unknown`: warn, do not block."""
    real = md.version
    monkeypatch.setattr(deps.md, "version", lambda d: "0+unknown" if d == "shapely" else real(d))
    assert deps.missing(deps.VECTOR) == []
    warnings = deps.check(deps.VECTOR, "Export Training Tiles")
    assert len(warnings) == 1 and "shapely" in warnings[0] and "0+unknown" in warnings[0]


def test_hint_on_debian_is_the_apt_line(monkeypatch):
    monkeypatch.setattr(deps, "uses_debian_python", lambda: True)
    hint = deps.install_hint([deps.ONNXRUNTIME, deps.TORCH])
    assert "sudo apt install python3-onnxruntime python3-torch" in hint
    assert "pip" not in hint


@pytest.mark.parametrize("platform", ["win32", "darwin", "linux"])
def test_hint_elsewhere_pins_what_qgis_ships(monkeypatch, platform):
    monkeypatch.setattr(deps, "uses_debian_python", lambda: False)
    monkeypatch.setattr(deps.sys, "platform", platform)
    hint = deps.install_hint([deps.ONNXRUNTIME])
    assert '"onnxruntime>=1.16"' in hint
    assert f'"numpy=={md.version("numpy")}"' in hint  # satisfied already: pip keeps QGIS's NumPy
    assert deps.INSTALLER_ALGORITHM in hint
    assert ("OSGeo4W Shell" in hint) == (platform == "win32")
    assert ("QGIS.app" in hint) == (platform == "darwin")


def test_debian_detection_reads_os_release(monkeypatch):
    monkeypatch.setattr(deps.sys, "platform", "linux")
    monkeypatch.setattr(deps.sys, "base_prefix", "/usr")
    monkeypatch.setattr(deps, "_os_release", lambda: {"ID": "ubuntu", "ID_LIKE": "debian"})
    assert deps.uses_debian_python()
    monkeypatch.setattr(deps, "_os_release", lambda: {"ID": "fedora"})
    assert not deps.uses_debian_python()
    monkeypatch.setattr(deps.sys, "platform", "win32")
    assert not deps.uses_debian_python()


def test_attrs_needed_only_with_affine_3(monkeypatch):
    """affine 3 with attrs < 23.2 breaks tuple(Affine) (Debian 12's attrs 22.2); affine 2 does not care."""
    real = md.version
    fake = {"attrs": "22.2.0", "affine": "3.0.1"}
    monkeypatch.setattr(deps.md, "version", lambda d: fake.get(d) or real(d))
    assert any("attrs 22.2.0 is too old" in p for p in deps.missing(deps.INFERENCE))
    fake["affine"] = "2.4.0"
    assert deps.missing(deps.INFERENCE) == []


def test_qgis_pins_leave_out_versions_pip_cannot_pin(monkeypatch):
    """A pin must be valid PEP 440 (else pip rejects the whole constraints file) and not a placeholder."""
    fake = {"numpy": "1.0~rc1", "GDAL": "0+unknown", "PyQt5": "5.15.9"}

    def version(d):
        if d in fake:
            return fake[d]
        raise md.PackageNotFoundError(d)

    monkeypatch.setattr(deps.md, "version", version)
    assert deps.qgis_pins() == ["PyQt5==5.15.9"]


def test_installed_but_not_importable_is_reported_with_the_installer(monkeypatch):
    """Metadata without an importable package (a broken install, a folder off ``sys.path``): the check says
    so and names the installer, instead of a ModuleNotFoundError when the algorithm runs."""
    monkeypatch.setattr(deps, "uses_debian_python", lambda: False)
    broken = deps.Requirement("dlc_not_importable", ("numpy",), "1.0")
    assert deps.missing((broken,)) == []  # versions only: what the installer plans with
    with pytest.raises(DependencyError, match=r"dlc_not_importable .* is installed but cannot be imported") as e:
        deps.check((broken,), "Train Model")
    assert deps.INSTALLER_ALGORITHM in str(e.value) and "(no restart needed)" in str(e.value)


@pytest.mark.parametrize(
    "version, ok",
    [
        ("1.26.4", True),
        ("2.13.0+cpu", True),
        ("4.0.2+dfsg", True),
        ("1!2.0rc1.post2.dev3", True),
        ("3", True),
        ("0+unknown", False),
        ("0.0.0", False),
        ("1.0~rc1", False),
        ("unknown", False),
        ("", False),
        (None, False),
    ],
)
def test_pinnable_version(version, ok):
    assert deps.pinnable_version(version) is ok


def test_dependency_check_says_what_the_installer_says(monkeypatch):
    """Both say: the installer's packages are used without a restart; a command run by hand needs one."""
    from deeplandcover.core import deps

    monkeypatch.setattr(deps, "uses_debian_python", lambda: False)
    hint = deps.install_hint([deps.ONNXRUNTIME])
    assert "Install Python dependencies" in hint and "(no restart needed)" in hint
    assert hint.endswith("then restart QGIS.")
