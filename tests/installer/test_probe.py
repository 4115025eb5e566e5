"""Tests of installer.probe: is a package index reachable before pip runs."""

from __future__ import annotations

import socket
import time

import pytest

from deeplandcover.installer import probe

from .installer_helpers import closed_port, http_index, isolated  # noqa: F401  (fixtures)


@pytest.fixture
def silent_port():
    """A localhost port that accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


# -- an unreachable index stops the install before pip runs -------------------------------------------
def test_probe_refused_timeout_and_answers(silent_port, http_index):
    assert "refused" in probe.index_error(f"http://127.0.0.1:{closed_port()}/simple", "torch").lower()
    t0 = time.monotonic()
    assert probe.index_error(f"http://127.0.0.1:{silent_port}/simple", timeout=1) == "timed out"
    assert time.monotonic() - t0 < 5
    url, status = http_index
    assert probe.index_error(url, "torch") is None  # 404: reachable, the project is just not there
    status[0] = 503
    assert probe.index_error(url) == "HTTP 503 Service Unavailable"
    assert probe.index_error("file:///no/such/dlc/index").startswith("no folder")
