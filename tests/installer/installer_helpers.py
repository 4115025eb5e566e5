"""Helpers of the installer tests: wheels built on the fly, installed-looking distributions, folder checks,
shell scripts standing in for executables, local ports and a local package index."""

from __future__ import annotations

import base64
import hashlib
import http.server
import socket
import stat
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from deeplandcover.installer import folder

PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"
HOOK = "import sys; sys.dlc_pth_ran = True\n"  # what a .pth file's import line may run


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    requires=(),
    files: dict | None = None,
    script: bool = False,
    module: str | None = None,
    root_files: dict | None = None,
) -> Path:
    """Build a pure-Python wheel ``name-version`` (package ``module``, default ``name`` with ``-`` -> ``_``)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    mod = module or dist
    info = f"{dist}-{version}.dist-info"
    content = {f"{mod}/__init__.py": f"__version__ = {version!r}\n\ndef main():\n    print({version!r})\n"}
    content.update({f"{mod}/{k}": v for k, v in (files or {}).items()})
    content.update(root_files or {})  # beside the package, e.g. a .pth file
    content[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    content[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: dlc-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    content[f"{info}/top_level.txt"] = mod + "\n"
    if script:
        content[f"{info}/entry_points.txt"] = f"[console_scripts]\n{name} = {mod}:main\n"
    record = []
    for path, text in content.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    content[f"{info}/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in content.items():
            z.writestr(path, text)
    return wheel


def unpack_wheel(wheel: Path, folder: Path) -> Path:
    """Unpack a pure-Python wheel into ``folder`` as ``pip install --target`` lays it out; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(folder)
    return folder


def fake_dist(site: Path, name: str, version: str) -> Path:
    """An installed-looking distribution (``*.dist-info`` with METADATA only) in ``site``."""
    d = site / f"{name.replace('-', '_')}-{version.replace('-', '_')}.dist-info"
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return d


def dist_infos(folder: Path) -> set[str]:
    """Names of the ``*.dist-info`` folders in ``folder``."""
    return {p.name for p in folder.glob("*.dist-info")}


def no_staging_left(root: Path) -> bool:
    """True when no ``.staging-*`` folder is left in ``root``."""
    return not any(p.name.startswith(".staging-") for p in root.iterdir()) if root.exists() else True


def script(folder: Path, name: str, body: str) -> Path:
    """An executable shell script ``folder/name`` running ``body`` (a stand-in for nvidia-smi, a Python...)."""
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return p


def closed_port() -> int:
    """A localhost port with nothing listening (connecting is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- fixtures (imported by each installer test module: a conftest.py here would shadow tests/conftest.py's
# `from conftest import ...` in the other test packages)
@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Plugin folder under tmp_path; sys.path and the probe modules restored after each test."""
    monkeypatch.setenv(folder.ENV_ROOT, str(tmp_path / "pkgs"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path / "pkgs"
    for m in [m for m in sys.modules if m.startswith("dlc_probe")]:
        del sys.modules[m]


@pytest.fixture
def wheels(tmp_path, monkeypatch) -> Path:
    """A find-links folder with dlc-probe 1.0 (-> dlc-probe-dep, numpy, affine) and dlc-probe-dep 1.0;
    pip (a subprocess: it inherits the environment) sees only that folder."""
    w = tmp_path / "wheels"
    make_wheel(
        w,
        "dlc-probe",
        "1.0",
        requires=("dlc-probe-dep", "numpy>=1.20", "affine"),
        files={"old.py": "X = 1\n"},
        script=True,
    )
    make_wheel(w, "dlc-probe-dep", "1.0")
    monkeypatch.setenv("PIP_FIND_LINKS", str(w))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    return w


@pytest.fixture
def http_index():
    """``(url, status)``: a local server answering every request with ``status[0]`` (default 404)."""
    status = [404]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802
            self.send_response(status[0])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple", status
    server.shutdown()
    server.server_close()
