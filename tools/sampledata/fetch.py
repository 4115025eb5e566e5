"""Download the source files of a set with pooch, checked by SHA-256, into a per-user download cache.

``pooch.retrieve`` (https://www.fatiando.org/pooch) downloads each file once into the cache, checks its
SHA-256 and keeps it; a file already in the cache with the right digest is not downloaded again. Web
URLs go through pooch's ``HTTPDownloader`` (short timeouts, no retries); ``file://`` URLs, which
pooch cannot read, through :class:`FileDownloader`, a plain copy, so that the whole path can run
offline against a folder laid out like ``DLC_DATA``.

Errors say what to do: :class:`SampleDataUnavailableError` (offline, missing file) names the set and
the URL and points to ``DLC_DATA`` and ``make data``; :class:`ChecksumError` names the file and both
digests.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from deeplandcover.core.errors import DeepLandCoverError, DependencyError

from .catalogue import DataSet, SourceFile

#: (connect, read) timeouts of a web download, seconds: fail fast when offline.
TIMEOUT_S = (10, 30)

#: Files at least this big report their download progress (bytes).
PROGRESS_MIN_BYTES = 2_000_000

Progress = Callable[[str], object]


class SampleDataUnavailableError(DeepLandCoverError, OSError):
    """A source file could not be fetched (no internet, a missing mirror, an unreachable host)."""


class ChecksumError(DeepLandCoverError, ValueError):
    """A fetched file's SHA-256 differs from the catalogue's."""


def unavailable_message(ds: DataSet, url: str, reason: object) -> str:
    """The one message for a file that could not be fetched: the set, the URL, why, and what to do."""
    why = str(reason)
    why = why if len(why) <= 160 else why[:157] + "..."
    return (
        f"Could not fetch the sample data set {ds.name!r}: {url} failed ({type(reason).__name__}: {why}). "
        "Set DLC_DATA to a folder with the sample data (the layout of the README's data section), "
        "or run on a machine with internet (`make data`)."
    )


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FileDownloader:
    """A pooch downloader for ``file://`` URLs: copies the local file to pooch's temporary output.

    Raises:
        FileNotFoundError: the URL's file does not exist.
    """

    def __call__(self, url: str, output_file, pooch_obj, check_only: bool = False):
        parsed = urlparse(url)
        source = Path(url2pathname(unquote(parsed.path)))
        if parsed.netloc and parsed.netloc != "localhost":
            source = Path(f"//{parsed.netloc}") / source  # file://server/share/... (UNC paths)
        if check_only:
            return source.is_file()
        if not source.is_file():
            raise FileNotFoundError(f"no file {source}")
        if isinstance(output_file, (str, Path)):
            shutil.copyfile(source, output_file)
        else:
            with open(source, "rb") as f:
                shutil.copyfileobj(f, output_file)
        return None


class _LineProgress:
    """A pooch progress bar that prints a line at each quarter of a download (pooch needs total/update/reset/close)."""

    def __init__(self, name: str, progress: Progress) -> None:
        self.name, self.progress = name, progress
        self.total, self.done, self.said = 0, 0, 0

    def update(self, n: int) -> None:
        self.done += n
        if self.total:
            quarter = min(4, 4 * self.done // self.total)
            if quarter > self.said and quarter < 4:
                self.said = quarter
                self.progress(f"      {self.name}: {25 * quarter} %")

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        self.said = 4


class _Recording:
    """Wraps a downloader and remembers the SHA-256 of what it wrote (pooch deletes a file that fails its check)."""

    def __init__(self, inner) -> None:
        self.inner, self.actual = inner, None

    def __call__(self, url, output_file, pooch_obj, check_only=False):
        if check_only:
            return self.inner(url, output_file, pooch_obj, check_only=True)
        self.inner(url, output_file, pooch_obj)
        if isinstance(output_file, (str, Path)):
            self.actual = sha256_of(output_file)
        return None


def _downloader(url: str, f: SourceFile, progress: Progress):
    if url.startswith("file:"):
        return FileDownloader()
    import pooch

    bar = _LineProgress(Path(f.path).name, progress) if f.size >= PROGRESS_MIN_BYTES else False
    return pooch.HTTPDownloader(progressbar=bar, timeout=TIMEOUT_S)


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """pooch logs every download at INFO level; our own progress lines say the same, once."""
    import pooch

    log = pooch.get_logger()
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


def fetch_file(ds: DataSet, f: SourceFile, cache: Path, mirror: str | None = None, progress: Progress = print) -> Path:
    """Fetch one file into ``cache/<set>/<path>`` (nothing is downloaded when it is there with the right digest).

    Returns:
        The cached file.

    Raises:
        SampleDataUnavailableError: the file could not be fetched (offline, missing, HTTP error).
        ChecksumError: the fetched file's SHA-256 is not the catalogue's; nothing is kept.
        DependencyError: pooch is not installed.
    """
    try:
        import pooch
    except ImportError as e:
        raise DependencyError(
            "Fetching the sample data needs pooch: `pip install pooch` (requirements-dev.txt) or "
            "`apt install python3-pooch`; or set DLC_DATA to a folder with the sample data."
        ) from e

    url = ds.url(f, mirror)
    local = cache / ds.name / f.path
    local.parent.mkdir(parents=True, exist_ok=True)
    downloader = _Recording(_downloader(url, f, progress))
    try:
        with _quiet_pooch():
            pooch.retrieve(
                url, known_hash=f"sha256:{f.sha256}", fname=local.name, path=local.parent, downloader=downloader
            )
    except ValueError as e:
        if downloader.actual is None or downloader.actual == f.sha256:
            raise SampleDataUnavailableError(unavailable_message(ds, url, e)) from e
        raise ChecksumError(
            f"{ds.name}/{f.path} fetched from {url} has SHA-256 {downloader.actual}, expected {f.sha256} "
            "(catalogue.json). The file was not kept: the source changed or the download was damaged; "
            "check the mirror or use a DLC_DATA folder."
        ) from e
    except Exception as e:  # requests' ConnectionError/Timeout/HTTPError, OSError of a missing mirror
        raise SampleDataUnavailableError(unavailable_message(ds, url, e)) from e
    return local


def fetch_set(ds: DataSet, cache: Path, mirror: str | None = None, progress: Progress = print) -> dict[str, Path]:
    """Fetch every file of ``ds`` into the cache, with one progress line per file.

    Returns:
        ``{path inside the set: cached file}``.

    Raises:
        SampleDataUnavailableError, ChecksumError: see :func:`fetch_file` (the first failure stops the set).
    """
    out = {}
    n = len(ds.files)
    for i, f in enumerate(ds.files, 1):
        cached = cache / ds.name / f.path
        verb = "cached" if cached.is_file() and cached.stat().st_size == f.size else "fetch"
        progress(f"  [{i}/{n}] {verb:6} {f.path} ({f.size / 1e6:.2f} MB)")
        out[f.path] = fetch_file(ds, f, cache, mirror, progress)
    return out
