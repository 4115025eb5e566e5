"""A feedback for tests that keeps every log line and progress value."""

from __future__ import annotations

from deeplandcover.core.feedback import NullFeedback


class RecordingFeedback(NullFeedback):
    """Feedback that keeps every line (warnings prefixed ``"WARNING "``) and every progress value; never cancels."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.progress: list[float] = []

    def info(self, message: str) -> None:  # noqa: D102
        self.lines.append(message)

    def warning(self, message: str) -> None:  # noqa: D102
        self.lines.append("WARNING " + message)

    def set_progress(self, percent: float) -> None:  # noqa: D102
        self.progress.append(percent)
