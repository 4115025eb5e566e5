"""Running pip in a subprocess of QGIS's Python: its environment, log streaming, progress and cancel.

pip runs in its own process group, so that a cancel ends it and its build subprocesses
(:func:`run_pip`); every line it prints goes to the feedback and to the log kept for the error
message (:func:`failure`), and its "Collecting"/"Installing" lines move the progress bar
(:class:`Progress`).
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Sequence

from ..core.errors import CanceledError
from ..core.feedback import Feedback
from .errors import InstallError

#: First pip with ``install --dry-run --report`` (resolve against the installed packages, install nothing).
REPORT_PIP = (22, 2)

#: The message of the :class:`CanceledError` raised when the user cancels an install.
CANCELED = "Installing Python packages was canceled; nothing was installed."

_WIN = sys.platform.startswith("win")
_NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)


def command_line(cmd: Sequence[str]) -> str:
    """``cmd`` as one line for the log, quoted for this platform's shell."""
    return subprocess.list2cmdline(list(cmd)) if _WIN else shlex.join(cmd)


def child_env(pythonpath: str | None = None) -> dict[str, str]:
    """pip's environment: ours without the pip settings that would redirect it, unbuffered UTF-8 output,
    no prompts; ``pythonpath`` appended to ``PYTHONPATH`` (the target, for the resolution to see it)."""
    env = dict(os.environ)
    for var in ("PIP_REQUIRE_VIRTUALENV", "PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PYTHONSTARTUP"):
        env.pop(var, None)
    env.update(
        PYTHONUNBUFFERED="1",
        PYTHONIOENCODING="utf-8",
        PIP_NO_INPUT="1",
        PIP_USER="0",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_ROOT_USER_ACTION="ignore",  # QGIS run as root (a container, CI): the folder is the plugin's own
    )
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), pythonpath) if p)
    return env


def _spawn(cmd: Sequence[str], env: dict[str, str]) -> subprocess.Popen:
    """Start ``cmd`` in its own process group (so :func:`_kill` ends pip and its build subprocesses)."""
    kw: dict = {}
    if _WIN:
        kw["creationflags"] = _NO_WINDOW | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    else:
        kw["start_new_session"] = True
    return subprocess.Popen(
        list(cmd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
        **kw,
    )


def _kill(proc: subprocess.Popen) -> None:
    """End ``proc`` and its children, waiting for them (TERM, then KILL after 5 s)."""
    if proc.poll() is not None:
        return
    if _WIN:
        subprocess.run(
            ["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True, creationflags=_NO_WINDOW, check=False
        )
    else:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        if _WIN:
            proc.kill()
        else:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
        proc.wait(5)


class Progress:
    """Maps pip's "Collecting"/"Installing" lines onto ``[start, end]`` percent of a feedback."""

    STEP = ("Collecting ", "Processing ", "Obtaining ")

    def __init__(self, feedback: Feedback, start: float, end: float, total: int | None = None) -> None:
        self.fb, self.start, self.end, self.total, self.n = feedback, start, end, total, 0

    def line(self, text: str) -> None:
        s = text.lstrip()
        if s.startswith(self.STEP):
            self.n += 1
            frac = min(self.n / self.total, 1.0) * 0.8 if self.total else 0.8 * (1 - 1 / (1 + self.n / 4))
        elif s.startswith("Installing collected packages"):
            frac = 0.9
        elif s.startswith(("Successfully installed", "Would install")):
            frac = 1.0
        else:
            return
        self.fb.set_progress(self.start + (self.end - self.start) * frac)


def run_pip(
    python: str,
    args: Sequence[str],
    progress: Progress,
    log: list[str],
    env: dict[str, str],
    hide: tuple[str, ...] = (),
) -> int:
    """Run ``python -m pip args``, streaming its lines to ``progress``'s feedback and to ``log``.

    ``progress`` also turns the lines into percent of its feedback, whose cancel kills pip.

    Lines that start with one of ``hide`` go to ``log`` only (the resolution's "Would install", which
    the installer reports itself, less what QGIS provides).

    Returns:
        pip's exit code.

    Raises:
        CanceledError: ``feedback.is_canceled()`` became True; pip was killed first.
        InstallError: pip could not be started.
    """
    cmd, feedback = [python, "-m", "pip", *args], progress.fb
    try:
        proc = _spawn(cmd, env)
    except OSError as e:
        raise InstallError(f"Could not start pip ({command_line(cmd)}): {e}") from e
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        try:
            for raw in proc.stdout:
                lines.put(raw)
        except (OSError, ValueError):
            pass
        finally:
            lines.put(None)

    reader = threading.Thread(target=pump, name="dlc-pip-output", daemon=True)
    reader.start()
    try:
        while True:
            if feedback.is_canceled():
                _kill(proc)
                raise CanceledError(CANCELED)
            try:
                raw = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if raw is None:
                break
            text = raw.rstrip()
            if text:
                log.append(text)
                if not (hide and text.lstrip().startswith(hide)):
                    feedback.info(text)
                progress.line(text)
        return proc.wait()
    finally:
        _kill(proc)
        reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()


def no_pip_message(python: str, detail: str = "") -> str:
    """What to do when QGIS's Python ``python`` has no pip, for this platform: one command, the path once.

    Args:
        python: the interpreter's path.
        detail: what running pip said (``No module named pip``; a leading ``<python>:`` is dropped).
    """
    detail = detail[len(python) + 1 :].strip() if detail.startswith(python + ":") else detail.strip()
    linux = {
        "debian": "sudo apt install python3-pip",
        "ubuntu": "sudo apt install python3-pip",
        "fedora": "sudo dnf install python3-pip",
        "rhel": "sudo dnf install python3-pip",
        "arch": "sudo pacman -S python-pip",
    }
    ids = _os_release_ids() if sys.platform.startswith("linux") else set()
    command = next((linux[i] for i in ("debian", "ubuntu", "fedora", "rhel", "arch") if i in ids), None)
    if command:
        return (
            f"pip is not available in the Python that QGIS runs ({python}{': ' + detail if detail else ''}). "
            f"This Linux's QGIS comes without it: Linux needs this one package, installed once with: {command} "
            "(then run this algorithm again)."
        )
    head = "pip is not available in the Python that QGIS runs" + (f" ({detail})" if detail else "") + ". "
    if sys.platform.startswith("win"):
        return head + f"Install it with the OSGeo4W Setup (package python3-pip), or run: {python} -m ensurepip"
    return head + f"Install it with: {python} -m ensurepip --user"


def _os_release_ids() -> set[str]:
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            pairs = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    except OSError:
        return set()
    return {pairs.get("ID", "").strip('"'), *pairs.get("ID_LIKE", "").strip('"').split()} - {""}


def pip_version(python: str) -> tuple[int, int]:
    """``(major, minor)`` of the pip in ``python``.

    Raises:
        InstallError: pip is not installed in that Python; says how to get it on this platform
            (:func:`no_pip_message`).
    """
    try:
        res = subprocess.run(
            [python, "-m", "pip", "--version"],
            capture_output=True,
            text=True,
            timeout=120,
            env=child_env(),
            creationflags=_NO_WINDOW,
        )
        m = re.match(r"pip (\d+)\.(\d+)", res.stdout.strip()) if res.returncode == 0 else None
    except (OSError, subprocess.SubprocessError) as e:
        raise InstallError(no_pip_message(python, str(e))) from e
    if m is None:
        detail = (res.stderr or res.stdout).strip().splitlines()[-1:]
        raise InstallError(no_pip_message(python, detail[0] if detail else ""))
    return int(m.group(1)), int(m.group(2))


def pip_settings(python: str) -> dict[str, str]:
    """pip's ``proxy`` and ``cert`` settings for ``python`` (environment first, then ``pip config list``).

    Returns:
        ``{"proxy": ..., "cert": ...}`` with the keys that are set; ``{}`` when pip cannot say.
    """
    out = {k: os.environ[f"PIP_{k.upper()}"] for k in ("proxy", "cert") if os.environ.get(f"PIP_{k.upper()}")}
    if len(out) == 2:
        return out
    try:
        res = subprocess.run(
            [python, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            env=child_env(),
            creationflags=_NO_WINDOW,
        )
    except (OSError, subprocess.SubprocessError):
        return out
    for line in res.stdout.splitlines():  # global.proxy='http://proxy:3128'
        m = re.match(r"^[\w:.-]*\.(proxy|cert)='(.*)'$", line.strip())
        if m and m.group(2):
            out.setdefault(m.group(1), m.group(2))
    return out


#: pip's words for a package index it could not talk to (urllib3's errors as pip logs them when retrying).
_NETWORK = re.compile(
    r"(\[Errno -?\d+\] [^'\")]+|Read timed out|timed out|CERTIFICATE_VERIFY_FAILED|ProxyError|"
    r"Tunnel connection failed[^'\")]*|Network is unreachable|Connection (?:refused|reset[^'\")]*))"
)


def network_error(log: Sequence[str]) -> str | None:
    """The first network error pip reported in ``log`` (``[Errno 111] Connection refused (host pypi.org)``)."""
    for line in log:
        m = _NETWORK.search(line)
        if m and ("Retrying" in line or "Could not fetch" in line or "connection" in line.lower()):
            host = re.search(r"host='([^']+)'", line) or re.search(r"https?://([^/\s'\"]+)", line)
            cause = re.sub(r"^\[Errno -?\d+\]\s*", "", m.group(1).strip())
            return cause + (f" (host {host.group(1)})" if host else "")
    return None


def failure(what: str, rc: int, log: list[str], constraints: Path) -> InstallError:
    """The error for a pip run that exited with ``rc``: what pip said first, then a hint.

    pip's lines were streamed to the feedback already, so only its ``ERROR:`` lines are repeated.
    """
    text = "\n".join(log)
    errors = list(dict.fromkeys(line.strip()[6:].strip() for line in log if line.lstrip().startswith("ERROR:")))
    said = (" pip said: " + "; ".join(e.rstrip(".") for e in errors[:4]) + ".") if errors else ""
    net = network_error(log)
    if net:
        return InstallError(
            f"pip could not reach the package index ({net}) while {what}; nothing was installed. Check the "
            "network connection and the proxy (pip reads HTTPS_PROXY and its pip.conf/pip.ini)." + said
        )
    hint = ""
    if "ResolutionImpossible" in text or "conflict" in text.lower():
        hint = (
            " A package needs a version of something that QGIS's Python already provides (those are "
            f"pinned in {constraints}); upgrade that package in QGIS's Python, or install an older "
            "version of the package that needs it."
        )
    elif "No matching distribution" in text or "Could not find a version" in text:
        hint = (
            f" The package index has no release of it for Python {sys.version_info[0]}.{sys.version_info[1]} "
            "on this platform (or pip is configured with another index: its pip.conf/pip.ini)."
        )
    elif "Permission denied" in text or "Access is denied" in text:
        hint = " The plugin's package folder is not writable; set DLC_PYTHON_PACKAGES to a writable folder."
    if not errors:
        said = " Last lines of pip's output: " + " | ".join(log[-5:])
    return InstallError(f"pip failed (exit code {rc}) {what}.{said}{hint}")


def requirement_from_report(item: dict) -> tuple[str, str, str]:
    """``(name, version, pip requirement)`` of one ``install`` item of pip's installation report."""
    meta = item.get("metadata", {})
    name, version = meta.get("name", ""), meta.get("version", "")
    req = f"{name}=={version}"
    info = item.get("download_info") or {}
    if item.get("is_direct") and info.get("url"):
        req = info["url"]
        vcs = info.get("vcs_info")
        if vcs:
            req = f"{vcs['vcs']}+{info['url']}@{vcs.get('commit_id', '')}".rstrip("@")
        req = f"{name} @ {req}"
    return name, version, req
