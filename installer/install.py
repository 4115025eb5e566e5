"""Installing pip requirement specifiers into the plugin's folder, as the steps of one install.

pip's ``--target`` implies ``--ignore-installed`` (pypa/pip#2373, #4116: there is no option to
supplement the installed packages), so pip alone would download and copy NumPy & co. again.
:func:`install` therefore runs these steps, each a function below:

1. **prepare** (:func:`_prepare`): find QGIS's Python and its pip, create the root folder, write the
   constraints file of everything the running Python provides (:mod:`.constraints`), and ask each extra
   package index once whether it answers (:mod:`.probe`): pip would retry an unreachable one for
   minutes and then take PyPI's packages instead.
2. **resolve** (:func:`_resolve`, pip >= 22.2): ``pip install --dry-run --report`` resolves the
   requirements against what QGIS's Python (and the plugin folder) already has; what it adds, less
   any distribution the running Python provides or QGIS owns, is what gets installed. A resolution
   with CUDA builds when the CPU was chosen stops here, before anything is downloaded (:mod:`.gpu`).
3. **stage** (:func:`_stage`): ``pip install --no-deps --target`` installs exactly that into a staging
   folder beside the target. An older pip runs one ``pip install --target --constraint`` instead
   (:func:`_stage_legacy`).
4. **prune** (:func:`_prune`): whatever the running Python provides or QGIS owns is deleted from the
   staging folder (the older pip installs it there).
5. **move into place** (:func:`_move_into_place`): ``.pth`` files are deleted
   (:func:`.folder.remove_pth_files`), :func:`.merge.merge` moves the staging folder's content into
   the target, all or nothing, then :func:`.folder.activate` puts it on ``sys.path``.

The pip commands in :attr:`InstallResult.commands` can be run again by hand: they name the target, the
constraints file and pip's report beside it (never the staging folder, which is gone afterwards).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..core.errors import CanceledError
from ..core.feedback import Feedback, ensure_feedback
from .constraints import QGIS_OWNED, Provided, provided_distributions, write_constraints
from .dists import Dist, delete_dist, scan
from .errors import InstallError
from .folder import (
    ENV_ROOT,
    activate,
    clean_stale_staging,
    guard_target,
    packages_dir,
    remove_pth_files,
    staging_folder,
)
from .gpu import BuildChoice, cuda_builds
from .merge import merge
from .names import canonical_name
from .pip import (
    CANCELED,
    REPORT_PIP,
    Progress,
    child_env,
    command_line,
    failure,
    pip_version,
    requirement_from_report,
    run_pip,
)
from .probe import check_indexes
from .python import find_python

#: pip's network options for the resolution: one retry and a short timeout, so that an index that stops
#: answering fails in seconds (pip's defaults: 5 retries of 15 s, for every package page).
RESOLVE_NETWORK = ("--retries", "1", "--timeout", "20")

_NOTHING_NEW = "Nothing to install: everything needed is already there."


@dataclass(frozen=True)
class InstallOptions:
    """How :func:`install` runs pip (``Plan.install_options`` fills them from a :class:`.plan.Plan`).

    Attributes:
        python: the interpreter to run pip with (default :func:`.python.find_python`).
        index_args: extra pip options such as ``["--extra-index-url", url]`` (see :func:`.gpu.index_args_for`).
        constraints: extra constraint lines appended to the constraints file (:attr:`.plan.Plan.constraints`).
        dry_run: resolve only (pip >= 22.2) and report what would be installed; never writes to the
            target (the constraints file is written, so the reported commands can be run by hand).
        legacy: force (True) or forbid (False) the one-step ``--target`` install; None: by pip version.
        build: the GPU choice and torch index (:attr:`.plan.Plan.build`). Unless the GPU was chosen, a
            resolution with CUDA builds of torch (:func:`.gpu.cuda_builds`) stops the install before
            anything is downloaded; an index of ``index_args`` that does not answer stops it with the
            choice named. None: no CUDA check.
    """

    python: str | None = None
    index_args: Sequence[str] = ()
    constraints: Sequence[str] = ()
    dry_run: bool = False
    legacy: bool | None = None
    build: BuildChoice | None = None


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


@dataclass
class _Install:
    """One install under way: what its steps read, and the :class:`InstallResult` they fill in."""

    python: str
    legacy: bool
    fb: Feedback
    result: InstallResult
    provided: dict[str, Provided]
    blocked: set[str]
    index_args: list[str]
    build: BuildChoice | None = None
    staging: Path = Path()  # set by install() once the staging folder exists
    common: tuple[str, ...] = ("--progress-bar", "off", "--no-input", "--disable-pip-version-check")

    @property
    def target(self) -> Path:
        return self.result.target

    @property
    def site_dir(self) -> Path:
        """Where pip installs (``--target``) inside the staging folder."""
        return self.staging / "site"

    @property
    def constraint_args(self) -> list[str]:
        return ["--constraint", str(self.result.constraints)]

    def shipped(self, key: str) -> bool:
        """True when the distribution ``key`` (canonical name) must not be installed: provided or QGIS's."""
        return key in self.blocked or key in self.provided

    def shown(self, args: Sequence[str], pythonpath: str | None = None) -> str:
        """The pip command line of ``args`` as the user would run it again: into the target, not the staging
        folder, with ``PYTHONPATH`` set as pip's environment had it."""
        line = command_line([self.python, "-m", "pip", *args]).replace(str(self.site_dir), str(self.target))
        if not pythonpath:
            return line
        if sys.platform.startswith("win"):
            return f'set "PYTHONPATH={pythonpath}" && {line}'
        return f"PYTHONPATH={command_line([pythonpath])} {line}"

    def pip(self, args: Sequence[str], what: str, progress: Progress, pythonpath: str | None = None, hide=()) -> None:
        """Log and run ``pip args``; raise :func:`.pip.failure` (about ``what``) when it fails."""
        self.result.commands.append(self.shown(args, pythonpath))
        self.fb.info(self.result.commands[-1])
        env = child_env(pythonpath)
        rc = run_pip(self.python, args, progress, self.result.log, env, hide)
        if rc != 0:
            raise failure(what, rc, self.result.log, self.result.constraints)


def install(
    requirement_specs: Sequence[str],
    target: str | os.PathLike | None = None,
    feedback: Feedback | None = None,
    options: InstallOptions | None = None,
) -> InstallResult:
    """Install ``requirement_specs`` and their missing dependencies into the plugin's folder.

    With pip >= 22.2 the install is two steps: ``pip install --dry-run --report`` resolves the
    requirements against what QGIS's Python (and the plugin folder) already has, with the
    constraints of :func:`.constraints.constraints_text`; then ``pip install --no-deps --target``
    installs exactly the distributions that resolution added, minus any the running Python provides
    or QGIS owns. An older pip runs one ``pip install --target --constraint`` and those distributions
    are removed from its output. Either way nothing QGIS's Python provides lands in the folder, and
    QGIS's site-packages are never written to (see the module docstring for the steps).

    pip writes into a staging folder beside the target; after a successful run its content is moved
    into the target, replacing older versions of the same distributions (found through their
    ``RECORD``) and rolled back if a move fails. A failure or cancel removes the staging folder and
    leaves the target untouched. Then :func:`.folder.activate` puts the target on ``sys.path``.

    Args:
        requirement_specs: pip requirement specifiers (``["onnxruntime>=1.16", "rasterio>=1.3"]``).
        target: the plugin's package folder (default :func:`.folder.packages_dir`).
        feedback: progress, log lines (every line of pip's output) and cancel (kills pip).
        options: how pip runs (interpreter, extra index, constraints, dry run, legacy mode, GPU choice).

    Returns:
        What was installed, skipped, and whether a restart is needed (see :class:`InstallResult`).

    Raises:
        InstallError: no interpreter or no pip, an extra package index that cannot be reached, CUDA
            builds resolved although the CPU was chosen, pip failed (pip's errors and a hint), or the
            target folder is unusable.
        CanceledError: ``feedback.is_canceled()`` became True; pip was killed, nothing was installed.
    """
    fb, o = ensure_feedback(feedback), options or InstallOptions()
    target = Path(packages_dir() if target is None else target).absolute()
    guard_target(target)
    specs = [s.strip() for s in requirement_specs if s and s.strip()]
    result = InstallResult(target=target, dry_run=o.dry_run)
    if not specs:
        fb.info("Nothing to install.")
        return result
    run = _prepare(result, fb, o)
    run.build = o.build
    check_indexes(run.python, run.index_args, o.build, fb)
    with staging_folder(target) as staging:
        run.staging = staging
        staged = _stage_legacy(run, specs) if run.legacy else _stage(run, _resolve(run, specs))
        if not staged:
            return result
        if fb.is_canceled():
            raise CanceledError(CANCELED)
        new = _prune(run)
        if not new:
            fb.info(_NOTHING_NEW)
            return result
        _move_into_place(run, new)
    return result


def _prepare(result: InstallResult, fb: Feedback, options: InstallOptions) -> _Install:
    """Find the interpreter and its pip, create the root folder, write the constraints file."""
    target, constraints, legacy = result.target, options.constraints, options.legacy
    python = options.python or find_python()
    version = pip_version(python)
    if legacy is None:
        legacy = version < REPORT_PIP
    fb.info(f"Python: {python} (pip {version[0]}.{version[1]}); packages folder: {target}")
    root = target.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InstallError(
            f"Cannot create the plugin's package folder {root}: {e}. Set {ENV_ROOT} to a writable folder."
        ) from e
    clean_stale_staging(root)
    provided = provided_distributions(exclude=[target])
    blocked = {canonical_name(n) for n in QGIS_OWNED}
    result.constraints = write_constraints(root / f"{target.name}-constraints.txt", exclude=[target])
    if constraints:
        with open(result.constraints, "a", encoding="utf-8") as f:
            f.write("# Needed by Deep Land Cover with the packages above:\n" + "\n".join(constraints) + "\n")
    return _Install(python, legacy, fb, result, provided, blocked, list(options.index_args))


def _resolve(run: _Install, specs: list[str]) -> list[str]:
    """pip's resolution of ``specs`` (``--dry-run --report``), less what must not be installed.

    Returns:
        The pip requirements to install (``name==version`` or a direct URL); :attr:`InstallResult.packages`
        and :attr:`InstallResult.skipped` are filled in.
    """
    report = run.target.parent / f"{run.target.name}-pip-report.json"  # kept: the logged command can be rerun
    report.unlink(missing_ok=True)
    args = ["install", "--dry-run", "--report", str(report), *run.constraint_args, *run.common, *RESOLVE_NETWORK]
    args += [*run.index_args, *specs]
    pythonpath = str(run.target) if run.target.is_dir() else None
    run.pip(args, f"resolving {', '.join(specs)}", Progress(run.fb, 0, 30), pythonpath, hide=("Would install",))
    try:
        items = json.loads(report.read_text(encoding="utf-8")).get("install", [])
    except (OSError, ValueError) as e:
        raise InstallError(f"pip did not write a readable installation report ({report}): {e}") from e
    reqs, resolved = [], []
    for item in items:
        name, ver, req = requirement_from_report(item)
        if run.shipped(canonical_name(name)):
            run.result.skipped.append(f"{name}=={ver}")
        else:
            reqs.append(req)
            resolved.append((name, ver))
            run.result.packages.append(f"{name}=={ver}")
    _refuse_cuda(run, resolved)
    if run.result.skipped:
        run.fb.warning(
            "Not installed, QGIS's Python provides them (or they belong to QGIS): " + ", ".join(run.result.skipped)
        )
    return reqs


def _stage(run: _Install, reqs: list[str]) -> bool:
    """``pip install --no-deps --target`` of the resolved ``reqs`` into the staging folder.

    Returns:
        True when pip installed something there; False when there is nothing to do or on a dry run.
    """
    args = ["install", "--no-deps", "--upgrade", "--target", str(run.site_dir), *run.common, *run.index_args, *reqs]
    if not reqs:
        run.fb.info(_NOTHING_NEW)
        return False
    if run.result.dry_run:
        run.result.commands.append(run.shown(args))
        run.fb.info("Would install: " + ", ".join(run.result.packages))
        return False
    run.pip(args, f"installing {', '.join(reqs)}", Progress(run.fb, 30, 90, total=len(reqs)))
    return True


def _stage_legacy(run: _Install, specs: list[str]) -> bool:
    """pip older than 22.2: one ``pip install --target --constraint`` of ``specs`` into the staging folder.

    Returns:
        True when pip ran; False on a dry run (this pip cannot resolve without installing).
    """
    args = ["install", "--target", str(run.site_dir), *run.constraint_args, *run.common, *run.index_args, *specs]
    if run.result.dry_run:
        run.result.commands.append(run.shown(args))
        run.result.packages = list(specs)
        run.fb.info(
            "pip is older than 22.2: it cannot resolve without installing; it would be run as:\n"
            + run.result.commands[-1]
        )
        return False
    run.pip(args, f"installing {', '.join(specs)}", Progress(run.fb, 0, 90))
    return True


def _prune(run: _Install) -> list[Dist]:
    """Delete from the staging folder what the running Python provides or QGIS owns.

    Returns:
        The distributions left there: the ones to move into the target.
    """
    new = scan(run.site_dir)
    if run.legacy:  # no report to check before: refuse before anything is moved into the target
        _refuse_cuda(run, [(d.name, d.version) for d in new if not run.shipped(d.key)])
    for dist in new:
        if run.shipped(dist.key):
            delete_dist(run.site_dir, dist)
            if f"{dist.name}=={dist.version}" not in run.result.skipped:
                run.result.skipped.append(f"{dist.name}=={dist.version}")
    new = [d for d in new if not run.shipped(d.key)]
    if run.legacy:
        run.result.packages = [f"{d.name}=={d.version}" for d in new]
        if run.result.skipped:
            run.fb.warning(
                "Removed from pip's output, QGIS's Python provides them (or they belong to QGIS): "
                + ", ".join(run.result.skipped)
            )
    return new


def _move_into_place(run: _Install, new: list[Dist]) -> None:
    """Move ``new`` from the staging folder into the target, note what needs a restart, activate the target."""
    run.fb.set_progress(92)
    removed = remove_pth_files(run.site_dir)
    replaced = merge(run.site_dir, run.target, new)
    removed += remove_pth_files(run.target)  # left by an older version of the plugin
    if removed:
        run.fb.info(
            "Deleted " + ", ".join(sorted(set(removed))) + " from the package folder: a .pth file runs code "
            "whenever Python starts from that folder, and none of these packages needs one."
        )
    imported = {m.split(".")[0] for m in list(sys.modules)}
    run.result.restart_required = sorted({t for d in [*new, *replaced] for t in d.top_levels if t in imported})
    activate(run.target)
    run.fb.set_progress(100)
    run.fb.info(f"Installed into {run.target}: " + ", ".join(run.result.packages))


def _refuse_cuda(run: _Install, resolved: list[tuple[str, str]]) -> None:
    """Stop when the CPU was chosen and ``resolved`` (name, version) holds CUDA builds (:func:`.gpu.cuda_builds`)."""
    if run.build is None or run.build.gpu:
        return
    cuda = cuda_builds(resolved)
    if cuda:
        raise InstallError(run.build.cuda_refusal(cuda, downloaded=run.legacy))
