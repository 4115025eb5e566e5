"""Install the optional Python packages into a folder owned by the plugin, with QGIS's own pinned.

QGIS users cannot easily run pip themselves (OSGeo4W Shell, the Python inside QGIS.app, Debian's
externally managed Python), so the Processing algorithm *Install Python dependencies* does it for
them, through this module. The rules it follows:

* **Which Python.** pip runs in a subprocess of the interpreter QGIS itself runs
  (:func:`find_python`): inside QGIS ``sys.executable`` is usually the QGIS binary, so the Python is
  searched next to it, in ``sys.exec_prefix`` and ``sys.base_prefix``, and verified by running it.
* **Where.** Packages go to a per-user folder owned by the plugin, one per Python minor version
  (:func:`packages_dir`), never into QGIS's site-packages. :func:`activate` appends it to
  ``sys.path`` *after* QGIS's own folders, so QGIS's NumPy, GDAL and PyQt always win.
* **What stays QGIS's.** A constraints file (:func:`constraints_text`) pins every distribution the
  running Python already provides, and nothing that it provides is ever copied into the folder
  (a copy would be shadowed anyway, see :func:`install`). PyQt, sip and GDAL are never installed.
* **Only what is missing** (:func:`plan`): a requirement already met is not passed to pip at all.
* **All or nothing.** pip writes into a staging folder next to the target; only a successful run
  is moved into place (:func:`install`), so a failed or cancelled install leaves the folder as it was.

Nothing heavy is imported here: the plugin calls :func:`activate` when QGIS loads it.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import importlib.metadata as md
import json
import os
import queue
import re
import shlex
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from . import deps
from .errors import CanceledError, DeepLandCoverError, InputError
from .feedback import Feedback, ensure_feedback

#: Environment variable: root folder of the plugin's packages (the target is ``<root>/python3.X``).
ENV_ROOT = "DLC_PYTHON_PACKAGES"
#: Environment variable: path of the Python interpreter to use, when :func:`find_python` cannot find it.
ENV_PYTHON = "DLC_PYTHON"
#: Environment variable: package index for torch (``""`` = PyPI only), see :func:`index_args_for`.
ENV_TORCH_INDEX = "DLC_TORCH_INDEX_URL"
#: PyTorch's CPU-only wheels: on Linux PyPI's torch pulls ~3 GB of CUDA libraries even without a GPU.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: First pip with ``install --dry-run --report`` (resolve against the installed packages, install nothing).
REPORT_PIP = (22, 2)

#: Distributions that belong to QGIS: never installed into the plugin folder, even when QGIS's Python
#: lacks them (a second PyQt/sip in the QGIS process crashes it; GDAL must be QGIS's build).
QGIS_OWNED = ("GDAL", "PyQt5", "PyQt6", "sip", "PyQt5-sip", "PyQt6-sip", "PyQt5-Qt5", "PyQt6-Qt6",
              "QScintilla", "PyQt5-QScintilla", "PyQt6-QScintilla")
#: Pinned by name in the constraints even if not importable by name elsewhere (numpy is also pinned
#: like every other provided distribution; listed here because it matters most: compiled wheels).
ALWAYS_PINNED = ("numpy", *QGIS_OWNED)

#: The sets offered by the Processing algorithm, see :func:`requirements_for`.
WHAT_CHOICES = ("inference", "training", "all")
GPU_CHOICES = ("auto", "cpu", "gpu")

#: Linux: one folder per NVIDIA GPU (the kernel driver's view; works without nvidia-smi).
PROC_NVIDIA_GPUS = "/proc/driver/nvidia/gpus"

_WIN = sys.platform.startswith("win")
_NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)
_STAGING_PREFIX = ".staging-"
_STALE_STAGING_S = 24 * 3600

# PEP 440 (the regex of the specification's appendix, as ``packaging`` uses it).
_PEP440 = re.compile(
    r"^\s*v?(?:(?:[0-9]+!)?(?P<release>[0-9]+(?:\.[0-9]+)*)"
    r"(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?"
    r"(?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?"
    r"(?:[-_.]?dev[-_.]?[0-9]*)?)"
    r"(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?\s*$",
    re.IGNORECASE,
)


_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)  # PEP 508 name


class InstallError(DeepLandCoverError, RuntimeError):
    """Installing Python packages failed: no interpreter or pip, pip's error, an unusable folder."""


# -- names and versions ----------------------------------------------------------------------------
def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name: ``PyQt5_sip`` -> ``pyqt5-sip``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinnable_version(version: str | None) -> bool:
    """True when ``version`` can be pinned with ``==`` in a constraints file.

    False for a version that is not PEP 440 (``1.0~rc1``, ``unknown``) and for a placeholder whose
    release is all zeros (``0+unknown``, ``0.0.0``: what Debian reports when a package was built
    without its version). Pinning a placeholder would make every ``>=`` requirement on it unsatisfiable.
    """
    if not version:
        return False
    m = _PEP440.match(version)
    return bool(m) and any(int(p) for p in m.group("release").split("."))


def _same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


@dataclass(frozen=True)
class Provided:
    """A distribution the running Python provides (the first one of that name on its path).

    Attributes:
        name: the distribution name as its metadata spells it (``GDAL``).
        version: its version string, as reported (may be unparseable).
        location: the ``sys.path`` entry that holds it.
    """

    name: str
    version: str
    location: str


def provided_distributions(path: Sequence[str] | None = None,
                           exclude: Iterable[str | os.PathLike] = ()) -> dict[str, Provided]:
    """Distributions the running Python provides, by canonical name.

    Args:
        path: folders to scan (default ``sys.path``, in order: the first copy of a name is the one
            ``import`` finds, so later copies are ignored).
        exclude: folders whose distributions do not count (the plugin's own target folder).

    Returns:
        ``{canonical name: Provided}``; distributions with broken metadata (no name) are skipped.
    """
    excluded = [os.fspath(e) for e in exclude]
    found: dict[str, Provided] = {}
    dists = md.distributions(path=list(path)) if path is not None else md.distributions()
    for dist in dists:
        try:
            name = dist.metadata["Name"]
            version = dist.version or ""
            location = os.fspath(dist.locate_file(""))
        except Exception:  # unreadable metadata: skip it, never fail an install over it
            continue
        if not name or any(_same_path(location, e) for e in excluded):
            continue
        found.setdefault(canonical_name(name), Provided(name, version, location))
    return found


def constraints_text(path: Sequence[str] | None = None, exclude: Iterable[str | os.PathLike] = ()) -> str:
    """A pip constraints file that pins everything the running Python provides.

    Every distribution found by :func:`provided_distributions` is pinned ``name==version``, not only
    numpy, GDAL and PyQt: the plugin folder comes after QGIS's site-packages on ``sys.path``, so a
    different version of any provided package installed there would never be imported, and pip would
    have resolved the new packages against a version that is not the one that runs (e.g. a new
    shapely wheel against a NumPy QGIS does not have). With everything pinned pip resolves against
    exactly what QGIS imports; when that is impossible pip says which package conflicts, instead of
    silently installing a copy that loses to QGIS's.

    Versions that cannot be pinned (see :func:`pinnable_version`, e.g. Debian's ``0+unknown``), and
    names that are not valid requirement names, are listed in a comment and left out: ``===`` would pin the literal string, which no index offers, so
    any requirement on the package would fail. They are still never installed: :func:`install`
    drops every provided distribution, whatever its version, from what pip resolved.

    Args:
        path: folders to scan (default ``sys.path``).
        exclude: folders whose distributions are not pinned (the plugin's own target folder).

    Returns:
        The file's text, one requirement per line, sorted by name.
    """
    provided = provided_distributions(path, exclude)
    pins, skipped = [], []
    for key in sorted(provided):
        p = provided[key]
        ok = pinnable_version(p.version) and _NAME.match(p.name) is not None
        (pins if ok else skipped).append(p)
    lines = [
        "# Deep Land Cover: what the Python that runs QGIS already provides, pinned so that pip never",
        f"# installs another version of it (Python {sys.version.split()[0]}, {sys.executable}).",
    ]
    if skipped:
        lines.append("# Not pinned (version not usable as a pin): "
                     + ", ".join(f"{p.name} {p.version!r}" for p in skipped))
    lines += [f"{p.name}=={p.version.strip()}" for p in pins]
    return "\n".join(lines) + "\n"


def write_constraints(file: str | os.PathLike, path: Sequence[str] | None = None,
                      exclude: Iterable[str | os.PathLike] = ()) -> Path:
    """Write :func:`constraints_text` to ``file`` (parent folders created) and return its path.

    Raises:
        OSError: the file cannot be written.
    """
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(constraints_text(path, exclude), encoding="utf-8")
    return file


# -- the interpreter ------------------------------------------------------------------------------
def _looks_like_python(exe: str | None) -> bool:
    if not exe:
        return False
    name = os.path.basename(exe).lower()
    if name.endswith(".exe"):
        name = name[:-4]
    return re.fullmatch(r"python(\d+(\.\d+)?)?", name) is not None


def _python_names() -> list[str]:
    major, minor = sys.version_info[:2]
    if _WIN:
        return ["python.exe", f"python{major}.exe", f"python{major}{minor}.exe"]
    return [f"python{major}.{minor}", f"python{major}", "python"]


def interpreter_candidates() -> list[str]:
    """Executables that may be the Python QGIS runs, most likely first (existing files only).

    ``$DLC_PYTHON`` first; then ``sys.executable`` and ``sys._base_executable`` when they are a
    Python (in a plain interpreter or a venv); then ``python3.X``/``python3``/``python`` (Windows:
    ``python.exe``) next to them, in their ``bin`` folder (QGIS.app: ``Contents/MacOS/bin``), in
    ``sys.exec_prefix``, ``sys.prefix``, ``sys.base_exec_prefix``, ``sys.base_prefix`` and their
    ``bin`` folders (OSGeo4W: ``apps/Python3XX/python.exe``); last the same names on ``PATH``.
    """
    first: list[str] = []
    if os.environ.get(ENV_PYTHON):
        first.append(os.environ[ENV_PYTHON])
    exe = sys.executable or ""
    base_exe = getattr(sys, "_base_executable", None) or ""
    first += [e for e in (exe, base_exe) if _looks_like_python(e)]
    dirs: list[str] = []
    for d in (os.path.dirname(exe), os.path.dirname(base_exe)):
        if d:
            dirs += [d, os.path.join(d, "bin")]
    for prefix in (sys.exec_prefix, sys.prefix, sys.base_exec_prefix, sys.base_prefix):
        if prefix:
            dirs += [prefix, os.path.join(prefix, "bin")]
    names = _python_names()
    found = first + [os.path.join(d, n) for d in dirs for n in names]
    found += [w for w in (shutil.which(n) for n in names) if w]
    out: list[str] = []
    for c in found:
        if os.path.isfile(c) and not any(_same_path(c, o) for o in out):
            out.append(c)
    return out


def _probe(exe: str) -> tuple[tuple[int, int], str] | None:
    """``((major, minor), sys.prefix)`` of the interpreter ``exe``, or None when it does not run."""
    code = "import sys; print('%d %d' % sys.version_info[:2]); print(sys.prefix)"
    try:
        res = subprocess.run([exe, "-c", code], capture_output=True, text=True, timeout=60,
                             creationflags=_NO_WINDOW)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or len(lines) < 2:
        return None
    try:
        major, minor = (int(x) for x in lines[0].split())
    except ValueError:
        return None
    return (major, minor), lines[1].strip()


def find_python() -> str:
    """The Python interpreter that runs QGIS (the one pip must run in).

    Each candidate of :func:`interpreter_candidates` is run; the first whose ``sys.version_info[:2]``
    and ``sys.prefix`` equal ours wins, else the first with the same version.

    Returns:
        The interpreter's path.

    Raises:
        InstallError: no candidate runs with this Python's version; says what was tried and that
            ``DLC_PYTHON`` can name it.
    """
    want = tuple(sys.version_info[:2])
    fallback = None
    tried = []
    for exe in interpreter_candidates():
        info = _probe(exe)
        if info is None:
            tried.append(f"{exe} (does not run)")
            continue
        version, prefix = info
        if version != want:
            tried.append(f"{exe} (Python {version[0]}.{version[1]})")
            continue
        if _same_path(prefix, sys.prefix):
            return exe
        fallback = fallback or exe
    if fallback:
        return fallback
    raise InstallError(
        f"Could not find the Python {want[0]}.{want[1]} interpreter that QGIS runs (QGIS runs as "
        f"{sys.executable}; prefix {sys.prefix}). Tried: {'; '.join(tried) or 'no candidate exists'}. "
        f"Set the environment variable {ENV_PYTHON} to its path (e.g. C:\\OSGeo4W\\apps\\Python312\\python.exe, "
        "/Applications/QGIS.app/Contents/MacOS/bin/python3 or /usr/bin/python3) and try again."
    )


# -- GPU ------------------------------------------------------------------------------------------
def has_nvidia_gpu() -> bool:
    """True when an NVIDIA GPU is present: ``nvidia-smi -L`` lists one, or (Linux) the driver
    shows one under ``/proc/driver/nvidia/gpus``."""
    smi = shutil.which("nvidia-smi")
    if smi is None and _WIN:
        legacy = os.path.join(os.environ.get("ProgramFiles", r"C:\Program Files"),
                              "NVIDIA Corporation", "NVSMI", "nvidia-smi.exe")
        smi = legacy if os.path.isfile(legacy) else None
    if smi:
        try:
            res = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, creationflags=_NO_WINDOW)
            if res.returncode == 0 and any(line.startswith("GPU ") for line in res.stdout.splitlines()):
                return True
        except (OSError, subprocess.SubprocessError):
            pass
    if sys.platform.startswith("linux"):
        try:
            with os.scandir(PROC_NVIDIA_GPUS) as entries:
                return any(True for _ in entries)
        except OSError:
            return False
    return False


def use_gpu(choice: str = "auto") -> bool:
    """Whether to install the GPU builds: ``"auto"`` (:func:`has_nvidia_gpu`), ``"gpu"`` or ``"cpu"``.

    Raises:
        InputError: ``choice`` is none of those.
    """
    if choice not in GPU_CHOICES:
        raise InputError(f"GPU choice must be one of {', '.join(GPU_CHOICES)}, not {choice!r}.")
    if choice == "auto":
        return has_nvidia_gpu()
    return choice == "gpu"


def index_args_for(specs: Sequence[str], gpu: bool) -> list[str]:
    """Extra pip index options for ``specs``: only for torch, whose PyPI builds fit few users.

    ``$DLC_TORCH_INDEX_URL`` when set (``""``: PyPI only), e.g. a CUDA index of PyTorch for GPU
    training on Windows (PyPI's Windows torch is CPU-only). Otherwise, on Linux without a GPU,
    PyTorch's CPU index (:data:`TORCH_CPU_INDEX`), so that pip does not download the CUDA libraries.
    """
    if not any(canonical_name(re.split(r"[\s<>=!~;\[(@]", s, maxsplit=1)[0]) == "torch" for s in specs):
        return []
    url = os.environ.get(ENV_TORCH_INDEX)
    if url is None:
        url = TORCH_CPU_INDEX if sys.platform.startswith("linux") and not gpu else ""
    return ["--extra-index-url", url] if url else []


# -- the target folder ----------------------------------------------------------------------------
def packages_root(settings_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds the plugin's package folders (one per Python minor version).

    ``$DLC_PYTHON_PACKAGES`` when set; else ``<settings_dir>/deeplandcover`` when a QGIS settings
    folder is given; else per user: ``%LOCALAPPDATA%\\deeplandcover`` on Windows (not the roaming
    ``%APPDATA%``: torch is gigabytes), ``~/Library/Application Support/deeplandcover`` on macOS,
    ``$XDG_DATA_HOME/deeplandcover`` (``~/.local/share/deeplandcover``) elsewhere. The plugin passes no
    settings folder, so every QGIS profile and qgis_process share one copy of the packages.
    """
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env).expanduser().absolute()
    if settings_dir:
        return Path(settings_dir).absolute() / "deeplandcover"
    home = Path.home()
    if _WIN:
        base = Path(os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "deeplandcover"


def packages_dir(settings_dir: str | os.PathLike | None = None) -> Path:
    """The plugin's package folder for this Python: ``packages_root(settings_dir)/python3.X``."""
    return packages_root(settings_dir) / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def activate(target: str | os.PathLike | None = None) -> bool:
    """Put ``target`` (default :func:`packages_dir`) on ``sys.path`` after everything already there.

    Appending (with :func:`site.addsitedir`, which also reads its ``.pth`` files) keeps QGIS's own
    site-packages first, so its NumPy and GDAL always win. Import caches are refreshed so packages
    installed a moment ago are found. Cheap: called when QGIS loads the plugin.

    Returns:
        True when the folder exists (and is now on ``sys.path``), False otherwise.
    """
    target = os.fspath(packages_dir() if target is None else target)
    if not os.path.isdir(target):
        return False
    if not any(_same_path(target, p) for p in sys.path if p):
        site.addsitedir(target)
    sys.path_importer_cache.pop(target, None)  # a "not a folder" entry cached before it existed
    importlib.invalidate_caches()
    return True


# -- what to install ------------------------------------------------------------------------------
def requirements_for(what: str, extra: Sequence[deps.Requirement] = ()) -> tuple[deps.Requirement, ...]:
    """The requirements of a set of algorithms, without duplicates.

    Args:
        what: ``"inference"`` (Classify Pixels, Detect Change, Export Training Tiles, accuracy:
            ``deps.INFERENCE``, ``deps.VECTOR``, ``deps.METRICS``), ``"training"`` (adds
            ``deps.TRAINING``) or ``"all"`` (adds ``deps.BATCH`` where it exists, and ``extra``: the
            Processing layer passes Classify Pixels (Batch)'s own ``REQUIREMENTS``).
        extra: requirements added for ``"all"``.

    Raises:
        InputError: ``what`` is none of :data:`WHAT_CHOICES`.
    """
    if what not in WHAT_CHOICES:
        raise InputError(f"What to install must be one of {', '.join(WHAT_CHOICES)}, not {what!r}.")
    groups = [deps.INFERENCE, deps.VECTOR, deps.METRICS]
    if what in ("training", "all"):
        groups.append(deps.TRAINING)
    if what == "all":
        groups += [tuple(getattr(deps, "BATCH", ())), tuple(extra)]
    out: list[deps.Requirement] = []
    for group in groups:
        out += [r for r in group if r not in out]
    return tuple(out)


@dataclass
class Plan:
    """What :func:`install` should be asked to install (see :func:`plan`).

    Attributes:
        target: the plugin's package folder.
        specs: pip requirement specifiers of what is missing (``onnxruntime-gpu>=1.16``).
        satisfied: requirements already met, as ``"numpy 1.26.4"``.
        unfixable: requirements met by a wrong version in QGIS's own Python, which comes first on
            ``sys.path`` so an install into the plugin folder would not help; one message each.
        gpu: whether the GPU builds were chosen.
        index_args: extra pip index options (see :func:`index_args_for`).
        constraints: extra constraint lines for pip (``affine<3`` when QGIS's Python has an attrs
            too old for affine 3, see ``Requirement.only_with``), for :func:`install`.
    """

    target: Path
    specs: list[str] = field(default_factory=list)
    satisfied: list[str] = field(default_factory=list)
    unfixable: list[str] = field(default_factory=list)
    gpu: bool = False
    index_args: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)


def _find_dist(dists: Sequence[str]) -> md.Distribution | None:
    for name in dists:
        try:
            return md.distribution(name)
        except md.PackageNotFoundError:
            continue
    return None


def _spec(req: deps.Requirement, gpu: bool) -> str:
    spec = req.spec
    if gpu and "onnxruntime-gpu" in req.dists and req.dists[0] != "onnxruntime-gpu":
        if sys.platform == "darwin":
            return spec  # no onnxruntime-gpu for macOS; CoreML is in the plain build
        spec = re.sub(rf"^{re.escape(req.dists[0])}(?![\w.-])", "onnxruntime-gpu", spec)
    return spec


def plan(requirements: Sequence[deps.Requirement], *, gpu: str = "auto", extra_specs: Sequence[str] = (),
         target: str | os.PathLike | None = None) -> Plan:
    """Which of ``requirements`` need installing (nothing is run but ``nvidia-smi``).

    A requirement already met (``deps.missing``) is skipped, except ``onnxruntime`` when the GPU is
    chosen and the CPU build sits in the plugin folder (it is then replaced by ``onnxruntime-gpu``).
    One met with a wrong version in the plugin folder is reinstalled; one met with a wrong version in
    QGIS's Python is reported in :attr:`Plan.unfixable`.

    Args:
        requirements: what the chosen algorithms need (see :func:`requirements_for`).
        gpu: ``"auto"``, ``"gpu"`` or ``"cpu"`` (see :func:`use_gpu`).
        extra_specs: pip requirement specifiers added as they are (pip skips them when met).
        target: the plugin's package folder (default :func:`packages_dir`).

    Raises:
        InputError: ``gpu`` is not a valid choice.
    """
    target = Path(packages_dir() if target is None else target)
    p = Plan(target=target, gpu=use_gpu(gpu))
    for req in requirements:
        dist = _find_dist(req.dists)
        in_target = dist is not None and _same_path(os.fspath(dist.locate_file("")), target)
        problems = deps.missing((req,))
        spec = _spec(req, p.gpu)
        if not problems:
            if dist is None:
                continue  # not needed here (``only_with`` a version of another package that is absent)
            name = dist.metadata["Name"]
            cpu_ort_in_target = (in_target and canonical_name(name) == "onnxruntime" and p.gpu
                                 and spec.startswith("onnxruntime-gpu"))
            if not cpu_ort_in_target:
                p.satisfied.append(f"{name} {dist.version}")
                continue
        elif dist is not None and not in_target:
            where = os.fspath(dist.locate_file(""))
            p.unfixable.append(
                f"{problems[0]}: it is installed in {where}, which QGIS's Python searches before the "
                "plugin's folder, so a copy there would not be used. Upgrade it in QGIS's Python "
                "(OSGeo4W Setup on Windows, the package manager or pip on Linux/macOS)."
            )
            continue
        if spec not in p.specs:
            p.specs.append(spec)
    p.specs += [s for s in extra_specs if s and s not in p.specs]
    p.index_args = index_args_for(p.specs, p.gpu)
    p.constraints = _conditional_constraints(requirements, target)
    return p


def _conditional_constraints(requirements: Sequence[deps.Requirement], target: Path) -> list[str]:
    """``X<v`` for each requirement needed only with ``X>=v`` (``only_with``) that QGIS's Python
    fails and the plugin folder cannot fix (it is shadowed): keeps pip from bringing in that ``X``."""
    out = []
    for req in requirements:
        only_with = getattr(req, "only_with", None)
        if not only_with:
            continue
        dist = _find_dist(req.dists)
        if dist is None or _same_path(os.fspath(dist.locate_file("")), target):
            continue
        other = _find_dist((only_with[0],))
        if other is not None and not _same_path(os.fspath(other.locate_file("")), target):
            continue  # QGIS's Python has it: pinned, and reported by plan() when it is too new
        if deps.missing((dataclasses.replace(req, only_with=None),)):
            line = f"{only_with[0]}<{only_with[1]}"
            if line not in out:
                out.append(line)
    return out


# -- running pip ----------------------------------------------------------------------------------
@dataclass
class InstallResult:
    """What :func:`install` did (or, with ``dry_run``, would do).

    Attributes:
        target: the plugin's package folder.
        packages: distributions installed (or to install), ``name==version``; with ``dry_run`` and a
            pip older than 22.2 the requirement specifiers as given (pip cannot resolve without installing).
        skipped: distributions pip resolved but the running Python already provides (or QGIS owns):
            not installed.
        restart_required: import names of installed or replaced packages that this process had
            already imported: QGIS must be restarted to use the new version.
        commands: the pip command lines run (or to run), for the log.
        constraints: the constraints file used.
        log: pip's output lines.
        dry_run: whether nothing was installed on purpose.
    """

    target: Path
    packages: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    restart_required: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    constraints: Path | None = None
    log: list[str] = field(default_factory=list)
    dry_run: bool = False


def _command_line(cmd: Sequence[str]) -> str:
    return subprocess.list2cmdline(list(cmd)) if _WIN else shlex.join(cmd)


def _child_env(pythonpath: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("PIP_REQUIRE_VIRTUALENV", "PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PYTHONSTARTUP"):
        env.pop(var, None)
    env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8", PIP_NO_INPUT="1", PIP_USER="0",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
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
    return subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, text=True, encoding="utf-8", errors="replace", bufsize=1, **kw)


def _kill(proc: subprocess.Popen) -> None:
    """End ``proc`` and its children, waiting for them (TERM, then KILL after 5 s)."""
    if proc.poll() is not None:
        return
    if _WIN:
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True,
                       creationflags=_NO_WINDOW, check=False)
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


class _Progress:
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


def _run_pip(python: str, args: Sequence[str], feedback: Feedback, progress: _Progress, log: list[str],
             env: dict[str, str]) -> int:
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
        raise InstallError(f"Could not start pip ({_command_line(cmd)}): {e}") from e
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
                raise CanceledError("Installing Python packages was canceled; nothing was installed.")
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
        res = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True, timeout=120,
                             env=_child_env(), creationflags=_NO_WINDOW)
        m = re.match(r"pip (\d+)\.(\d+)", res.stdout.strip()) if res.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        m, res = None, None
    if m is None:
        detail = (res.stderr or res.stdout).strip().splitlines()[-1:] if res is not None else []
        raise InstallError(
            f"pip is not available in the Python that QGIS runs ({python}"
            + (f": {detail[0]}" if detail else "") + "). Install it: Debian/Ubuntu `sudo apt install python3-pip`; "
            "Windows: OSGeo4W Setup, package python3-pip; macOS/other: `" + python + " -m ensurepip --user`."
        )
    return int(m.group(1)), int(m.group(2))


def _failure(what: str, rc: int, log: list[str], constraints: Path) -> InstallError:
    text = "\n".join(log)
    hint = ""
    if "ResolutionImpossible" in text or "conflict" in text.lower():
        hint = (" A package needs a version of something that QGIS's Python already provides (those are "
                f"pinned in {constraints}); upgrade that package in QGIS's Python, or install an older "
                "version of the package that needs it.")
    elif "No matching distribution" in text or "Could not find a version" in text:
        hint = (f" No release was found for Python {sys.version_info[0]}.{sys.version_info[1]} on this platform, "
                "or the package index could not be reached (check the network; pip reads HTTPS_PROXY and "
                "its pip.ini/pip.conf).")
    elif "Permission denied" in text or "Access is denied" in text:
        hint = " The plugin's package folder is not writable; set DLC_PYTHON_PACKAGES to a writable folder."
    tail = "\n".join(log[-30:])
    return InstallError(f"pip failed (exit code {rc}) {what}.{hint} Last lines of pip's output:\n{tail}")


def _requirement_from_report(item: dict) -> tuple[str, str, str]:
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


def _guard_target(target: Path) -> None:
    """Refuse a target folder that is (part of) the running Python's own installation."""
    own = [sys.prefix, sys.base_prefix, sys.exec_prefix]
    try:
        own += site.getsitepackages()
    except AttributeError:  # very old virtualenv
        pass
    own += [p for p in sys.path if p and os.path.basename(p) in ("site-packages", "dist-packages")]
    if any(_same_path(target, o) for o in own) or (target / "os.py").exists():
        raise InstallError(f"Refusing to install into {target}: it is part of QGIS's own Python. "
                           f"Set {ENV_ROOT} to another folder.")


def _clean_stale_staging(root: Path) -> None:
    now = time.time()
    for entry in root.glob(_STAGING_PREFIX + "*"):
        try:
            if now - entry.stat().st_mtime > _STALE_STAGING_S:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            pass


def install(requirement_specs: Sequence[str], target: str | os.PathLike | None = None,
            feedback: Feedback | None = None, *, python: str | None = None, index_args: Sequence[str] = (),
            constraints: Sequence[str] = (), dry_run: bool = False, legacy: bool | None = None) -> InstallResult:
    """Install ``requirement_specs`` and their missing dependencies into the plugin's folder.

    pip's ``--target`` implies ``--ignore-installed`` (pypa/pip#2373, #4116: there is no option to
    supplement the installed packages), so pip alone would download and copy NumPy & co. again.
    With pip >= 22.2 the install is two steps: ``pip install --dry-run --report`` resolves the
    requirements against what QGIS's Python (and the plugin folder) already has, with the
    constraints of :func:`constraints_text`; then ``pip install --no-deps --target`` installs exactly
    the distributions that resolution added, minus any the running Python provides or QGIS owns. An
    older pip runs one ``pip install --target --constraint`` and those distributions are removed
    from its output. Either way nothing QGIS's Python provides lands in the folder, and QGIS's
    site-packages are never written to.

    pip writes into a staging folder beside the target; after a successful run its content is moved
    into the target, replacing older versions of the same distributions (found through their
    ``RECORD``) and rolled back if a move fails. A failure or cancel removes the staging folder and
    leaves the target untouched. Then :func:`activate` puts the target on ``sys.path``.

    Args:
        requirement_specs: pip requirement specifiers (``["onnxruntime>=1.16", "rasterio>=1.3"]``).
        target: the plugin's package folder (default :func:`packages_dir`).
        feedback: progress, log lines (every line of pip's output) and cancel (kills pip).
        python: the interpreter to run pip with (default :func:`find_python`).
        index_args: extra pip options such as ``["--extra-index-url", url]`` (see :func:`index_args_for`).
        constraints: extra constraint lines appended to the constraints file (:attr:`Plan.constraints`).
        dry_run: resolve only (pip >= 22.2) and report what would be installed; never writes to the
            target (the constraints file is written, so the reported commands can be run by hand).
        legacy: force (True) or forbid (False) the one-step ``--target`` install; None: by pip version.

    Returns:
        What was installed, skipped, and whether a restart is needed (see :class:`InstallResult`).

    Raises:
        InstallError: no interpreter or no pip, pip failed (with the tail of its log and a hint),
            or the target folder is unusable.
        CanceledError: ``feedback.is_canceled()`` became True; pip was killed, nothing was installed.
    """
    fb = ensure_feedback(feedback)
    target = Path(packages_dir() if target is None else target).absolute()
    _guard_target(target)
    specs = [s.strip() for s in requirement_specs if s and s.strip()]
    index_args = list(index_args)
    root = target.parent
    result = InstallResult(target=target, dry_run=dry_run)
    if not specs:
        fb.info("Nothing to install.")
        return result

    python = python or find_python()
    version = pip_version(python)
    if legacy is None:
        legacy = version < REPORT_PIP
    fb.info(f"Python: {python} (pip {version[0]}.{version[1]}); packages folder: {target}")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InstallError(f"Cannot create the plugin's package folder {root}: {e}. "
                           f"Set {ENV_ROOT} to a writable folder.") from e
    _clean_stale_staging(root)
    provided = provided_distributions(exclude=[target])
    blocked = {canonical_name(n) for n in QGIS_OWNED}
    result.constraints = write_constraints(root / f"{target.name}-constraints.txt", exclude=[target])
    if constraints:
        with open(result.constraints, "a", encoding="utf-8") as f:
            f.write("# Needed by Deep Land Cover with the packages above:\n" + "\n".join(constraints) + "\n")
    common = ["--progress-bar", "off", "--no-input", "--disable-pip-version-check"]
    constraint_args = ["--constraint", str(result.constraints)]

    staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{target.name}-", dir=root))
    site_dir = staging / "site"
    try:
        if legacy:
            args = ["install", "--target", str(site_dir), *constraint_args, *common, *index_args, *specs]
            if dry_run:
                result.commands.append(_command_line([python, "-m", "pip", *args]).replace(str(site_dir), str(target)))
                result.packages = list(specs)
                fb.info("pip is older than 22.2: it cannot resolve without installing; it would be run as:\n"
                        + result.commands[-1])
                return result
            result.commands.append(_command_line([python, "-m", "pip", *args]))
            fb.info(result.commands[-1])
            rc = _run_pip(python, args, fb, _Progress(fb, 0, 90), result.log, _child_env())
            if rc != 0:
                raise _failure(f"installing {', '.join(specs)}", rc, result.log, result.constraints)
        else:
            report = staging / "report.json"
            args = ["install", "--dry-run", "--report", str(report), *constraint_args, *common, *index_args, *specs]
            result.commands.append(_command_line([python, "-m", "pip", *args]))
            fb.info(result.commands[-1])
            env = _child_env(str(target) if target.is_dir() else None)
            rc = _run_pip(python, args, fb, _Progress(fb, 0, 30), result.log, env)
            if rc != 0:
                raise _failure(f"resolving {', '.join(specs)}", rc, result.log, result.constraints)
            try:
                items = json.loads(report.read_text(encoding="utf-8")).get("install", [])
            except (OSError, ValueError) as e:
                raise InstallError(f"pip did not write a readable installation report ({report}): {e}") from e
            reqs = []
            for item in items:
                name, ver, req = _requirement_from_report(item)
                key = canonical_name(name)
                if key in blocked or key in provided:
                    result.skipped.append(f"{name}=={ver}")
                else:
                    reqs.append(req)
                    result.packages.append(f"{name}=={ver}")
            if result.skipped:
                fb.warning("Not installed, QGIS's Python provides them (or they belong to QGIS): "
                           + ", ".join(result.skipped))
            args = ["install", "--no-deps", "--target", str(site_dir), *common, *index_args, *reqs]
            shown = _command_line([python, "-m", "pip", *args]).replace(str(site_dir), str(target))
            if not reqs:
                fb.info("Nothing to install: everything needed is already there.")
                return result
            if dry_run:
                result.commands.append(shown)
                fb.info("Would install: " + ", ".join(result.packages))
                return result
            result.commands.append(_command_line([python, "-m", "pip", *args]))
            fb.info(result.commands[-1])
            rc = _run_pip(python, args, fb, _Progress(fb, 30, 90, total=len(reqs)), result.log, _child_env())
            if rc != 0:
                raise _failure(f"installing {', '.join(reqs)}", rc, result.log, result.constraints)

        if fb.is_canceled():
            raise CanceledError("Installing Python packages was canceled; nothing was installed.")
        new = _scan(site_dir)
        for dist in new:
            if dist.key in blocked or dist.key in provided:
                _delete_dist(site_dir, dist)
                if f"{dist.name}=={dist.version}" not in result.skipped:
                    result.skipped.append(f"{dist.name}=={dist.version}")
        new = [d for d in new if d.key not in blocked and d.key not in provided]
        if legacy:
            result.packages = [f"{d.name}=={d.version}" for d in new]
            if result.skipped:
                fb.warning("Removed from pip's output, QGIS's Python provides them (or they belong to QGIS): "
                           + ", ".join(result.skipped))
        if not new:
            fb.info("Nothing to install: everything needed is already there.")
            return result
        fb.set_progress(92)
        replaced = _merge(site_dir, target, new)
        imported = {m.split(".")[0] for m in list(sys.modules)}
        result.restart_required = sorted({t for d in [*new, *replaced] for t in d.top_levels if t in imported})
        activate(target)
        fb.set_progress(100)
        fb.info(f"Installed into {target}: " + ", ".join(result.packages))
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- distributions in a folder (staging or target) -------------------------------------------------
@dataclass
class _Dist:
    key: str
    name: str
    version: str
    info_dir: str  # relative to the folder
    files: set[str]  # relative posix paths inside the folder (RECORD, scripts mapped to bin/)
    top_levels: set[str]


def _record_files(folder: Path, info_dir: str) -> set[str]:
    files: set[str] = set()
    record = folder / info_dir / "RECORD"
    try:
        with open(record, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                if not row or not row[0]:
                    continue
                parts = [p for p in PurePosixPath(row[0].replace("\\", "/")).parts if p not in ("", ".")]
                while parts and parts[0] == "..":  # --target: scripts are recorded as ../../bin/x
                    parts.pop(0)
                if parts and ".." not in parts and not PurePosixPath(parts[0]).is_absolute():
                    files.add("/".join(parts))
    except OSError:
        pass
    for p in (folder / info_dir).rglob("*"):
        if p.is_file():
            files.add(p.relative_to(folder).as_posix())
    return files


def _top_levels(folder: Path, info_dir: str, files: set[str]) -> set[str]:
    top = folder / info_dir / "top_level.txt"
    if top.is_file():
        return {t.strip() for t in top.read_text(encoding="utf-8", errors="replace").split() if t.strip()}
    out = set()
    for f in files:
        first = f.split("/")[0]
        if first.endswith((".dist-info", ".data", ".pth")) or first in ("bin", "Scripts", "__pycache__"):
            continue
        if "/" in f:
            out.add(first)
        elif first.endswith((".py", ".so", ".pyd")):
            out.add(first.split(".")[0])
    return out


def _scan(folder: Path) -> list[_Dist]:
    """The distributions installed in ``folder`` (``*.dist-info`` with metadata)."""
    out = []
    if not folder.is_dir():
        return out
    for dist in md.distributions(path=[str(folder)]):
        try:
            name, version = dist.metadata["Name"], dist.version
            info_path = getattr(dist, "_path", None)  # the *.dist-info folder (PathDistribution)
        except Exception:
            continue
        if not name or info_path is None:
            continue
        info_dir = Path(info_path).name
        files = _record_files(folder, info_dir)
        out.append(_Dist(canonical_name(name), name, version, info_dir, files, _top_levels(folder, info_dir, files)))
    return out


def _remove_empty_dirs(folder: Path, rels: Iterable[str]) -> None:
    """Remove folders left empty (or holding only ``__pycache__``) above the files ``rels``."""
    parents = {PurePosixPath(r).parent for r in rels}
    for rel in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        while rel.parts:
            d = folder / rel
            try:
                left = [e for e in os.listdir(d) if e != "__pycache__"]
                if left:
                    break
                shutil.rmtree(d)
            except OSError:
                break
            rel = rel.parent


def _delete_dist(folder: Path, dist: _Dist) -> None:
    for rel in dist.files:
        try:
            (folder / rel).unlink()
        except OSError:
            pass
    shutil.rmtree(folder / dist.info_dir, ignore_errors=True)
    _remove_empty_dirs(folder, dist.files)


def _merge(staging: Path, target: Path, new: list[_Dist]) -> list[_Dist]:
    """Move ``staging``'s content into ``target``, replacing older copies; all or nothing.

    A distribution of ``target`` is replaced when ``staging`` has one of the same name or one that
    writes any of its files (``onnxruntime`` -> ``onnxruntime-gpu``). Its files are moved aside
    first, then ``staging``'s entries are moved in (whole folders where ``target`` has none); if a
    move fails everything is moved back.

    Returns:
        The distributions of ``target`` that were replaced.

    Raises:
        InstallError: a file could not be moved (e.g. a loaded library on Windows); the target is
            as before.
    """
    if not target.exists():
        try:
            os.replace(staging, target)
            return []
        except OSError:
            target.mkdir(parents=True, exist_ok=True)
    new_keys = {d.key for d in new}
    new_files = set().union(*(d.files for d in new)) if new else set()
    old = [d for d in _scan(target) if d.key in new_keys or d.files & new_files]
    trash = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}old-", dir=target.parent))
    moved_out: list[str] = []
    moved_in: list[str] = []

    def move_out(rel: str) -> None:
        dst = trash / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(target / rel, dst)
        moved_out.append(rel)

    def move_in(rel: str) -> None:
        src, dst = staging / rel, target / rel
        if dst.is_dir() and src.is_dir() and not dst.is_symlink():
            for child in sorted(os.listdir(src)):
                move_in(f"{rel}/{child}" if rel else child)
            return
        if dst.exists() or dst.is_symlink():
            move_out(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        moved_in.append(rel)

    try:
        for d in old:
            for rel in sorted(d.files | {f.relative_to(target).as_posix()
                                         for f in (target / d.info_dir).rglob("*") if f.is_file()}):
                if (target / rel).is_file() or (target / rel).is_symlink():
                    move_out(rel)
        for child in sorted(os.listdir(staging)):
            move_in(child)
    except OSError as e:
        for rel in reversed(moved_in):
            try:
                os.replace(target / rel, staging / rel)
            except OSError:
                pass
        for rel in reversed(moved_out):
            try:
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(trash / rel, target / rel)
            except OSError:
                pass
        _remove_empty_dirs(target, moved_in)
        shutil.rmtree(trash, ignore_errors=True)
        raise InstallError(f"Could not move the new packages into {target}: {e}. The folder was left as it "
                           "was; close QGIS (a package in use cannot be replaced on Windows) and try again.") from e
    _remove_empty_dirs(target, moved_out)
    shutil.rmtree(trash, ignore_errors=True)
    return old
