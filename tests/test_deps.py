"""core.deps: version parsing and messages."""

from __future__ import annotations

import pytest

from deeplandcover.core import deps
from deeplandcover.core.errors import DependencyError


def test_installed_requirements_pass():
    deps.check(deps.INFERENCE)
    deps.check(deps.TRAINING)


def test_too_old_and_missing_are_named():
    too_new_needed = deps.Requirement("numpy", ("numpy",), "99.0")
    absent = deps.Requirement("nosuchpkg", ("nosuchpkg", "nosuchpkg-gpu"), "1.0")
    problems = deps.missing((too_new_needed, absent))
    assert any("numpy" in p and "too old" in p for p in problems)
    assert any("nosuchpkg is not installed" in p for p in problems)
    with pytest.raises(DependencyError, match=r'pip install --user "numpy>=99.0" "nosuchpkg>=1.0"'):
        deps.check((too_new_needed, absent), "Test")


def test_upper_bound():
    req = deps.Requirement("numpy", ("numpy",), "1.0", "1.1")
    assert "too new" in deps.missing((req,))[0]
