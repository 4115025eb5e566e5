"""Moving a successful install from its staging folder into the target: all or nothing.

A distribution of the target is replaced when the staging folder has one of the same name or one that
writes any of its files (``onnxruntime`` -> ``onnxruntime-gpu``). Its files are moved aside first,
then the staging folder's entries are moved in; if a move fails every move is undone, so the target
is as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .dists import Dist, remove_empty_dirs, scan
from .errors import InstallError
from .folder import STAGING_PREFIX


class _Moves:
    """Moves entries between the staging folder, the target and a trash folder, and can undo them all."""

    def __init__(self, staging: Path, target: Path, trash: Path) -> None:
        self.staging, self.target, self.trash = staging, target, trash
        self.moved_out: list[str] = []
        self.moved_in: list[str] = []

    def move_out(self, rel: str) -> None:
        """Move the target's ``rel`` into the trash."""
        dst = self.trash / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.target / rel, dst)
        self.moved_out.append(rel)

    def move_in(self, rel: str) -> None:
        """Move the staging folder's ``rel`` into the target: a whole folder where the target has none,
        else entry by entry, moving out whatever it replaces."""
        src, dst = self.staging / rel, self.target / rel
        if dst.is_dir() and src.is_dir() and not dst.is_symlink():
            for child in sorted(os.listdir(src)):
                self.move_in(f"{rel}/{child}" if rel else child)
            return
        if dst.exists() or dst.is_symlink():
            self.move_out(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        self.moved_in.append(rel)

    def undo(self) -> None:
        """Move everything back where it was, last move first (best effort)."""
        for rel in reversed(self.moved_in):
            try:
                os.replace(self.target / rel, self.staging / rel)
            except OSError:
                pass
        for rel in reversed(self.moved_out):
            try:
                (self.target / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.trash / rel, self.target / rel)
            except OSError:
                pass
        remove_empty_dirs(self.target, self.moved_in)


def _files_of(folder: Path, dist: Dist) -> list[str]:
    """``dist``'s files in ``folder`` (``RECORD`` and everything in its ``*.dist-info``), sorted."""
    info = {f.relative_to(folder).as_posix() for f in (folder / dist.info_dir).rglob("*") if f.is_file()}
    return sorted(dist.files | info)


def merge(staging: Path, target: Path, new: list[Dist]) -> list[Dist]:
    """Move ``staging``'s content into ``target``, replacing older copies; all or nothing.

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
    old = [d for d in scan(target) if d.key in new_keys or d.files & new_files]
    trash = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}old-", dir=target.parent))
    moves = _Moves(staging, target, trash)
    try:
        for d in old:
            for rel in _files_of(target, d):
                if (target / rel).is_file() or (target / rel).is_symlink():
                    moves.move_out(rel)
        for child in sorted(os.listdir(staging)):
            moves.move_in(child)
    except OSError as e:
        moves.undo()
        shutil.rmtree(trash, ignore_errors=True)
        raise InstallError(
            f"Could not move the new packages into {target}: {e}. The folder was left as it "
            "was; close QGIS (a package in use cannot be replaced on Windows) and try again."
        ) from e
    remove_empty_dirs(target, moves.moved_out)
    shutil.rmtree(trash, ignore_errors=True)
    return old
