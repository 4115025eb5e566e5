"""The distributions installed in a folder (the staging folder or the target), read from their metadata.

pip's ``--target`` folders have no installer database: each ``*.dist-info`` and its ``RECORD`` say
which files a distribution owns, so it can be deleted (:func:`delete_dist`) or replaced
(:func:`.merge.merge`) file by file.
"""

from __future__ import annotations

import csv
import importlib.metadata as md
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable

from .names import canonical_name


@dataclass
class Dist:
    """One distribution installed in a folder.

    Attributes:
        key: its canonical name (:func:`.names.canonical_name`).
        name, version: as its metadata spells them.
        info_dir: its ``*.dist-info`` folder, relative to the folder.
        files: relative posix paths inside the folder (``RECORD``, scripts mapped to ``bin/``).
        top_levels: its import names (``top_level.txt``, else guessed from ``files``).
    """

    key: str
    name: str
    version: str
    info_dir: str  # relative to the folder
    files: set[str]  # relative posix paths inside the folder (RECORD, scripts mapped to bin/)
    top_levels: set[str]


def _record_files(folder: Path, info_dir: str) -> set[str]:
    """The files ``RECORD`` lists that lie inside ``folder``, and every file of the ``*.dist-info``."""
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
    """The import names of a distribution: its ``top_level.txt``, else the top folders and modules of ``files``."""
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


def scan(folder: Path) -> list[Dist]:
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
        out.append(Dist(canonical_name(name), name, version, info_dir, files, _top_levels(folder, info_dir, files)))
    return out


def remove_empty_dirs(folder: Path, rels: Iterable[str]) -> None:
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


def delete_dist(folder: Path, dist: Dist) -> None:
    """Delete ``dist``'s files and ``*.dist-info`` from ``folder``, and the folders that leaves empty."""
    for rel in dist.files:
        try:
            (folder / rel).unlink()
        except OSError:
            pass
    shutil.rmtree(folder / dist.info_dir, ignore_errors=True)
    remove_empty_dirs(folder, dist.files)
