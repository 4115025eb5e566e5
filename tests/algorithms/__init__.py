"""Tests of ``algorithms``."""
