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

from ..errors import CanceledError
from ..feedback import Feedback
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
    python: str, args: Sequence[str], feedback: Feedback, progress: Progress, log: list[str], env: dict[str, str]
) -> int:
    """Run ``python -m pip args``, streaming its lines to ``feedback`` and ``log``.

    Returns:
        pip's exit code.

    Raises:
        CanceledError: ``feedback.is_canceled()`` became True; pip was killed first.
        InstallError: pip could not be started.
    """
    cmd = [python, "-m", "pip", *args]
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
                feedback.info(text)
                progress.line(text)
        return proc.wait()
    finally:
        _kill(proc)
        reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()


def pip_version(python: str) -> tuple[int, int]:
    """``(major, minor)`` of the pip in ``python``.

    Raises:
        InstallError: pip is not installed in that Python; says how to get it on each platform.
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
    except (OSError, subprocess.SubprocessError):
        m, res = None, None
    if m is None:
        detail = (res.stderr or res.stdout).strip().splitlines()[-1:] if res is not None else []
        raise InstallError(
            f"pip is not available in the Python that QGIS runs ({python}"
            + (f": {detail[0]}" if detail else "")
            + "). Install it: Debian/Ubuntu `sudo apt install python3-pip`; "
            "Windows: OSGeo4W Setup, package python3-pip; macOS/other: `" + python + " -m ensurepip --user`."
        )
    return int(m.group(1)), int(m.group(2))


def failure(what: str, rc: int, log: list[str], constraints: Path) -> InstallError:
    """The error for a pip run that exited with ``rc``: a hint from its ``log``, and the log's last lines."""
    text = "\n".join(log)
    hint = ""
    if "ResolutionImpossible" in text or "conflict" in text.lower():
        hint = (
            " A package needs a version of something that QGIS's Python already provides (those are "
            f"pinned in {constraints}); upgrade that package in QGIS's Python, or install an older "
            "version of the package that needs it."
        )
    elif "No matching distribution" in text or "Could not find a version" in text:
        hint = (
            f" No release was found for Python {sys.version_info[0]}.{sys.version_info[1]} on this platform, "
            "or the package index could not be reached (check the network; pip reads HTTPS_PROXY and "
            "its pip.ini/pip.conf)."
        )
    elif "Permission denied" in text or "Access is denied" in text:
        hint = " The plugin's package folder is not writable; set DLC_PYTHON_PACKAGES to a writable folder."
    tail = "\n".join(log[-30:])
    return InstallError(f"pip failed (exit code {rc}) {what}.{hint} Last lines of pip's output:\n{tail}")


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
