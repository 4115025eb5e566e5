"""Is a package index reachable? One short request before pip runs, so that an unreachable extra index
stops the install at once instead of pip retrying it for minutes and then falling back to PyPI.

pip treats an extra index it cannot reach as empty: after its retries (5 by default, for every
package) it takes what the other indexes offer. For torch that fallback is PyPI's CUDA build on Linux
(issue #27: 7 minutes of retries, then 3 GB). :func:`index_error` asks the index once, with the
proxy and CA bundle pip would use (``HTTPS_PROXY``, ``PIP_PROXY``/``PIP_CERT`` or pip's
configuration, see :func:`.pip.pip_settings`), and says what failed.
"""

from __future__ import annotations

import os
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Sequence

from ..core.feedback import Feedback
from .errors import InstallError
from .gpu import BuildChoice
from .pip import pip_settings

#: Seconds one probe may take (connect and answer).
PROBE_TIMEOUT_S = 10.0
#: pip options that name a package index (their URL follows).
INDEX_OPTIONS = ("--extra-index-url", "--index-url", "-i")


def _reason(e: BaseException) -> str:
    """The short cause of a failed request: ``Connection refused``, ``Name or service not known``, ``timed out``."""
    inner = getattr(e, "reason", e)
    if isinstance(inner, (socket.timeout, TimeoutError)):
        return "timed out"
    text = getattr(inner, "strerror", None) or str(inner) or type(inner).__name__
    return text.strip() or type(inner).__name__


def _opener(url: str, proxy: str | None, cert: str | None) -> urllib.request.OpenerDirector:
    handlers: list = []
    if proxy:
        handlers.append(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
    if url.startswith("https:"):
        ctx = ssl.create_default_context(cafile=cert if cert and os.path.isfile(cert) else None)
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    return urllib.request.build_opener(*handlers)


def index_error(
    url: str, project: str = "", *, proxy: str | None = None, cert: str | None = None, timeout: float = PROBE_TIMEOUT_S
) -> str | None:
    """Why the package index ``url`` cannot be reached, or None when it answers.

    A HEAD request for ``<url>/<project>/`` (the page pip reads). Any HTTP answer but a server error
    (5xx) or "proxy authentication required" (407) counts as reachable, as does a failed certificate
    check (pip may trust another CA bundle): only what keeps pip from talking to the index is an error.
    A ``file:`` URL must name an existing folder.

    Args:
        url: the index (``https://download.pytorch.org/whl/cpu``).
        project: a project name on it (``torch``), or "" to ask for the index itself.
        proxy: proxy URL to use (default: ``HTTP(S)_PROXY`` of the environment).
        cert: CA bundle file (default: the system's).
        timeout: seconds.

    Returns:
        None, or the cause as pip's network errors word it (``Connection refused``, ``timed out``,
        ``HTTP 503 Service Unavailable``).
    """
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = urllib.request.url2pathname(parsed.path)
        return None if os.path.isdir(path) else f"no folder {path}"
    if parsed.scheme not in ("http", "https"):
        return None  # not ours to judge: pip says what it makes of it
    page = url.rstrip("/") + (f"/{project}/" if project else "/")
    request = urllib.request.Request(page, method="HEAD", headers={"User-Agent": "deeplandcover-installer"})
    try:
        with _opener(url, proxy, cert).open(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as e:
        if e.code >= 500 or e.code == 407:
            return f"HTTP {e.code} {e.reason}"
        return None
    except urllib.error.URLError as e:
        if isinstance(e.reason, ssl.SSLCertVerificationError):
            return None
        return _reason(e)
    except (OSError, ValueError) as e:  # timeouts, resets, a malformed URL
        return _reason(e)


def check_indexes(python: str, index_args: Sequence[str], build: BuildChoice | None, feedback: Feedback) -> None:
    """Ask every package index named in ``index_args`` once whether it answers (:func:`index_error`).

    Args:
        python: the interpreter pip runs in (its proxy and CA settings are used, :func:`.pip.pip_settings`).
        index_args: pip options (``["--extra-index-url", url]``).
        build: the GPU choice and torch index, named in the message; None: a plain message.
        feedback: where the check is logged.

    Raises:
        InstallError: an index does not answer; names its URL and what failed.
    """
    urls = [index_args[i + 1] for i, a in enumerate(index_args[:-1]) if a in INDEX_OPTIONS]
    if not urls:
        return
    settings = pip_settings(python)
    for url in urls:
        project = "torch" if build is not None and url == build.torch_index else ""
        feedback.info(f"Checking that the package index {url} answers ...")
        reason = index_error(url, project, proxy=settings.get("proxy"), cert=settings.get("cert"))
        if reason is None:
            continue
        if build is not None:
            raise InstallError(build.unreachable(url, reason))
        raise InstallError(
            f"Could not reach the package index {url} ({reason}); stopped before running pip, nothing was "
            "downloaded. Check the network connection and the proxy (HTTPS_PROXY, pip.conf/pip.ini)."
        )
