"""Tests of installer.pip: what pip says when it cannot reach its index or is missing."""

from __future__ import annotations

import sys

import pytest

from deeplandcover.installer import folder, pip
from deeplandcover.installer.errors import InstallError

from .installer_helpers import isolated  # noqa: F401  (fixtures)

# -- what pip says when it cannot reach its index -------------------------------------------------------
PIP_REFUSED = (
    "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection "
    "broken by 'NewConnectionError(\"HTTPSConnection(host='pypi.org', port=443): Failed to establish a new "
    "connection: [Errno 111] Connection refused\")': /simple/onnxruntime/"
)


PIP_DNS = (
    "WARNING: Retrying (Retry(total=0, ...)) after connection broken by 'NameResolutionError(\"HTTPSConnection"
    "(host='download.pytorch.org', port=443): Failed to resolve 'download.pytorch.org' ([Errno -2] Name or "
    "service not known)\")': /whl/cpu/torch/"
)


def test_network_errors_lead_the_message():
    assert pip.network_error([PIP_REFUSED]) == "Connection refused (host pypi.org)"
    assert pip.network_error(["Collecting x", PIP_DNS]) == "Name or service not known (host download.pytorch.org)"
    err = pip.failure(
        "resolving onnxruntime>=1.16",
        1,
        [PIP_REFUSED, "ERROR: No matching distribution found for onnxruntime>=1.16"],
        folder.packages_dir(),
    )
    assert str(err).startswith("pip could not reach the package index (Connection refused (host pypi.org))")
    assert "No release" not in str(err) and str(err).count("No matching distribution") == 1


@pytest.mark.parametrize(
    "osrel, expected",
    [
        ('ID=debian\nVERSION_ID="13"\n', "sudo apt install python3-pip"),
        ("ID=ubuntu\nID_LIKE=debian\n", "sudo apt install python3-pip"),
        ("ID=fedora\n", "sudo dnf install python3-pip"),
    ],
)
def test_no_pip_on_linux_names_the_one_package(monkeypatch, tmp_path, osrel, expected):
    rel = tmp_path / "os-release"
    rel.write_text(osrel)
    real_open = open
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr("builtins.open", lambda f, *a, **k: real_open(rel if f == "/etc/os-release" else f, *a, **k))
    msg = pip.no_pip_message("/usr/bin/python3", "/usr/bin/python3: No module named pip")
    assert expected in msg and "Linux needs this one package" in msg
    assert msg.count("/usr/bin/python3") == 1 and "No module named pip" in msg


def test_no_pip_message_from_a_python_without_pip(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho '/usr/bin/python3: No module named pip' >&2\nexit 1\n")
    fake.chmod(0o755)
    if not sys.platform.startswith("linux"):
        pytest.skip("a shell script as the interpreter")
    with pytest.raises(InstallError, match="pip is not available in the Python that QGIS runs") as e:
        pip.pip_version(str(fake))
    assert str(e.value).count(str(fake)) == 1 and "No module named pip" in str(e.value)
