"""core.feedback: the null, printing and sub-range feedbacks and the cancel check."""

from __future__ import annotations

import logging

import pytest

from deeplandcover.core.errors import CanceledError
from deeplandcover.core.feedback import (
    Feedback,
    NullFeedback,
    PrintFeedback,
    SubFeedback,
    check_canceled,
    ensure_feedback,
)

from .helpers.feedback import RecordingFeedback


def test_null_feedback_logs_and_never_cancels(caplog):
    fb = ensure_feedback(None)
    assert isinstance(fb, NullFeedback) and isinstance(fb, Feedback) and not fb.is_canceled()
    with caplog.at_level(logging.INFO, logger="deeplandcover"):
        fb.info("hello")
        fb.warning("careful")
    assert [(r.levelname, r.message) for r in caplog.records] == [("INFO", "hello"), ("WARNING", "careful")]
    given = RecordingFeedback()
    assert ensure_feedback(given) is given
    check_canceled(given)  # not canceled: no error


def test_print_feedback_prints_every_ten_percent(capsys):
    fb = PrintFeedback()
    for p in (0, 3, 9.9, 10, 15, 25, 99, 100):
        fb.set_progress(p)
    fb.info("line")
    fb.warning("odd")
    out = capsys.readouterr().out.splitlines()
    assert [s.strip() for s in out] == ["0.0 %", "10.0 %", "25.0 %", "99.0 %", "100.0 %", "line", "WARNING: odd"]


def test_sub_feedback_maps_progress_and_passes_the_rest():
    parent = RecordingFeedback()
    sub = SubFeedback(parent, 20, 60)
    for p in (0, 50, 100):
        sub.set_progress(p)
    sub.info("a")
    sub.warning("b")
    assert parent.progress == [20, 40, 60] and parent.lines == ["a", "WARNING b"]
    assert not sub.is_canceled()


def test_check_canceled_raises_once_canceled():
    class Canceled(RecordingFeedback):
        def is_canceled(self) -> bool:
            return True

    with pytest.raises(CanceledError, match="Canceled by the user"):
        check_canceled(SubFeedback(Canceled(), 0, 50))
