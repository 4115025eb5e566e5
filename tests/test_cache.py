"""core.cache: the per-user cache folder, named by an environment variable or the platform's cache."""

from __future__ import annotations

import sys
from pathlib import Path

from deeplandcover.core.cache import user_cache_dir

ENV = "DLC_TEST_CACHE_DIR"


def test_the_environment_variable_wins(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, str(tmp_path / "mine"))
    assert user_cache_dir("weights", ENV) == tmp_path / "mine"
    assert not (tmp_path / "mine").exists()  # neither checked nor created


def test_an_empty_variable_falls_back_to_the_platform_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, "")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir("models", ENV) == tmp_path / "xdg" / "deeplandcover" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir("models", ENV) == Path.home() / ".cache" / "deeplandcover" / "models"


def test_windows_and_macos_caches(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert user_cache_dir("weights", ENV) == tmp_path / "local" / "deeplandcover" / "weights"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert user_cache_dir("weights", ENV) == Path.home() / "Library" / "Caches" / "deeplandcover" / "weights"
