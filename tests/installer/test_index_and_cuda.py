"""The installer never downloads a CUDA torch by accident, and an unreachable index stops it at once (issue #27).

Real pip runs against local wheels (``PIP_FIND_LINKS``, ``PIP_NO_INDEX``) and real sockets on
127.0.0.1: a closed port (connection refused), a port that accepts and never answers (timeout), and a
small HTTP server (an index that answers).
"""

from __future__ import annotations

import http.server
import socket
import sys
import threading
import time

import pytest

from deeplandcover.installer import folder, gpu, install, pip, plan, probe
from deeplandcover.installer.errors import InstallError
from deeplandcover.installer.gpu import BuildChoice
from deeplandcover.installer.install import InstallOptions

from ..helpers.feedback import RecordingFeedback
from .installer_helpers import isolated, make_wheel, no_staging_left, wheels  # noqa: F401  (fixtures)

CPU = BuildChoice("cpu", False, "")


def closed_port() -> int:
    """A localhost port with nothing listening (connecting is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_port():
    """A localhost port that accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


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


# -- the torch index ------------------------------------------------------------------------------
def test_torch_index_dialog_then_environment_then_cpu_default(monkeypatch):
    monkeypatch.delenv(gpu.ENV_TORCH_INDEX, raising=False)
    linux = sys.platform.startswith("linux")
    assert gpu.torch_index(gpu=False) == (gpu.TORCH_CPU_INDEX if linux else "")
    assert gpu.torch_index(gpu=True) == ""
    assert gpu.torch_index(False, "https://mirror.example/whl/cpu/") == "https://mirror.example/whl/cpu"
    assert gpu.torch_index(False, "PyPI") == "" and gpu.torch_index(False, "  ") == gpu.torch_index(False)
    monkeypatch.setenv(gpu.ENV_TORCH_INDEX, "https://env.example/cu126")
    assert gpu.torch_index(True) == "https://env.example/cu126"
    assert gpu.torch_index(True, "https://dialog.example/cu128") == "https://dialog.example/cu128"  # the dialog wins
    assert gpu.index_args_for(["torch>=2.1"], True, "pypi") == []
    assert gpu.index_args_for(["onnx>=1.14"], False, "https://x.example") == []  # only for torch


def test_plan_names_the_choice_and_the_index(monkeypatch):
    monkeypatch.delenv(gpu.ENV_TORCH_INDEX, raising=False)
    p = plan.plan([], gpu="cpu", extra_specs=["torch>=2.1"], torch_index_setting="https://mirror.example/cpu")
    assert p.index_args == ["--extra-index-url", "https://mirror.example/cpu"]
    assert p.build == BuildChoice("cpu", False, "https://mirror.example/cpu")
    assert p.build.text() == "GPU: CPU only" and "https://mirror.example/cpu" in p.build.index_text()
    assert BuildChoice("auto", False).text() == "GPU: Auto (no NVIDIA GPU found)"


@pytest.mark.parametrize(
    "name, version, cuda",
    [
        ("torch", "2.15.0+cu132", True),
        ("torch", "2.5.1+rocm6.2", True),
        ("nvidia-cublas-cu12", "12.4.5.8", True),
        ("nvidia_cudnn_cu13", "9.1", True),
        ("triton", "3.1.0", True),
        ("cuda-bindings", "13.0.1", True),
        ("torch", "2.15.0+cpu", False),
        ("torch", "2.15.0", False),  # PyPI's Windows/macOS torch: no label, no nvidia dependencies
        ("onnxruntime-gpu", "1.20", False),  # chosen explicitly with the GPU only
        ("numpy", "2.2.4", False),
    ],
)
def test_cuda_builds(name, version, cuda):
    assert gpu.cuda_builds([(name, version)]) == ([f"{name}=={version}"] if cuda else [])


# -- pip's resolution with CUDA packages stops the install ------------------------------------------
@pytest.fixture
def cuda_wheels(wheels):
    """dlc-gputorch 2.0+cu126 needing nvidia-dlc-cublas and triton: the shape of PyPI's Linux torch."""
    make_wheel(wheels, "dlc-gputorch", "2.0+cu126", requires=("nvidia-dlc-cublas", "triton"))
    make_wheel(wheels, "nvidia-dlc-cublas", "12.6")
    make_wheel(wheels, "triton", "3.0", module="dlc_fake_triton")
    return wheels


@pytest.mark.parametrize("legacy", [False, True], ids=["report", "target-then-check"])
def test_cuda_resolution_stops_before_anything_is_installed(cuda_wheels, isolated, legacy):
    fb = RecordingFeedback()
    with pytest.raises(InstallError, match=r"Stopped before (installing|downloading) anything") as e:
        install.install(["dlc-gputorch"], feedback=fb, options=InstallOptions(build=CPU, legacy=legacy))
    msg = str(e.value)
    assert "3 CUDA/triton packages (dlc-gputorch, nvidia-dlc-cublas, triton)" in msg  # +cu126: a CUDA build
    assert "GPU: CPU only" in msg and "Torch package index" in msg and "GPU: NVIDIA GPU" in msg
    assert ("before downloading" in msg) is not legacy  # an old pip had to download them to know
    assert not folder.packages_dir().exists() and no_staging_left(isolated)
    if not legacy:  # decided on the report: the install step never ran
        assert not any("--no-deps" in c for c in fb.lines if c.startswith(sys.executable))


def test_cuda_allowed_when_the_gpu_is_chosen(cuda_wheels, isolated):
    res = install.install(["dlc-gputorch"], options=InstallOptions(build=BuildChoice("gpu", True, "")))
    assert sorted(res.packages) == ["dlc-gputorch==2.0+cu126", "nvidia-dlc-cublas==12.6", "triton==3.0"]


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


def test_unreachable_torch_index_stops_within_seconds_naming_it(wheels, isolated, monkeypatch):
    url = f"http://127.0.0.1:{closed_port()}/whl/cpu"
    monkeypatch.setattr(install, "run_pip", lambda *a, **k: pytest.fail("pip must not run"))
    t0 = time.monotonic()
    with pytest.raises(InstallError) as e:
        install.install(
            ["dlc-probe"],
            options=InstallOptions(index_args=["--extra-index-url", url], build=BuildChoice("cpu", False, url)),
        )
    assert time.monotonic() - t0 < 30
    msg = str(e.value)
    assert msg.startswith(f"Could not reach the torch package index {url} (") and "refused" in msg.lower()
    assert "GPU: CPU only" in msg and "Torch package index" in msg and "nothing was downloaded" in msg
    assert not folder.packages_dir().exists() and no_staging_left(isolated)


def test_reachable_index_is_passed_to_pip(wheels, isolated, http_index):
    url, _ = http_index
    fb = RecordingFeedback()
    res = install.install(
        ["dlc-probe"], feedback=fb, options=InstallOptions(index_args=["--extra-index-url", url], dry_run=True)
    )
    assert any(line == f"Checking that the package index {url} answers ..." for line in fb.lines)
    assert all(f"--extra-index-url {url}" in c for c in res.commands)


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


def test_real_pip_against_a_closed_index_says_connection_refused(isolated, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{closed_port()}/simple")
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")  # none of this machine's find-links or mirrors
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    t0 = time.monotonic()
    with pytest.raises(InstallError, match=r"^pip could not reach the package index \(Connection refused"):
        install.install(["dlc-not-on-any-index"])
    assert time.monotonic() - t0 < 60
    assert not folder.packages_dir().exists()


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
