"""Progress, cancel and log reporting without QGIS.

Core functions take a ``feedback`` argument that follows :class:`Feedback`. The Processing layer passes
an adapter over ``QgsProcessingFeedback`` (see ``algorithms/base.py``); scripts pass nothing and get
:class:`NullFeedback`, or :class:`PrintFeedback` for console output.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from .errors import CanceledError

_log = logging.getLogger("deeplandcover")


@runtime_checkable
class Feedback(Protocol):
    """What core needs from a progress reporter."""

    def set_progress(self, percent: float) -> None:
        """Report overall progress, ``percent`` in [0, 100]."""

    def is_canceled(self) -> bool:
        """True once the user asked to stop."""

    def info(self, message: str) -> None:
        """Log an informational line."""

    def warning(self, message: str) -> None:
        """Log a warning that does not stop the run."""


class NullFeedback:
    """Feedback that logs through :mod:`logging` and never cancels."""

    def set_progress(self, percent: float) -> None:  # noqa: D102
        pass

    def is_canceled(self) -> bool:  # noqa: D102
        return False

    def info(self, message: str) -> None:  # noqa: D102
        _log.info(message)

    def warning(self, message: str) -> None:  # noqa: D102
        _log.warning(message)


class PrintFeedback(NullFeedback):
    """Feedback that prints log lines (and progress every 10 %) to stdout, for scripts and the CLI."""

    def __init__(self) -> None:
        self._last = -10.0

    def set_progress(self, percent: float) -> None:  # noqa: D102
        if percent - self._last >= 10 or percent >= 100 > self._last:
            self._last = percent
            print(f"  {percent:5.1f} %", flush=True)

    def info(self, message: str) -> None:  # noqa: D102
        print(message, flush=True)

    def warning(self, message: str) -> None:  # noqa: D102
        print(f"WARNING: {message}", flush=True)


def ensure_feedback(feedback: Feedback | None) -> Feedback:
    """Return ``feedback`` or a :class:`NullFeedback` when it is None."""
    return NullFeedback() if feedback is None else feedback


def check_canceled(feedback: Feedback) -> None:
    """Raise :class:`CanceledError` when the user canceled.

    Raises:
        CanceledError: ``feedback.is_canceled()`` is True.
    """
    if feedback.is_canceled():
        raise CanceledError("Canceled by the user.")


class SubFeedback:
    """Maps progress of one step onto the range ``[start, end]`` of a parent feedback."""

    def __init__(self, parent: Feedback, start: float, end: float) -> None:
        self.parent, self.start, self.end = parent, start, end

    def set_progress(self, percent: float) -> None:  # noqa: D102
        self.parent.set_progress(self.start + (self.end - self.start) * percent / 100.0)

    def is_canceled(self) -> bool:  # noqa: D102
        return self.parent.is_canceled()

    def info(self, message: str) -> None:  # noqa: D102
        self.parent.info(message)

    def warning(self, message: str) -> None:  # noqa: D102
        self.parent.warning(message)
