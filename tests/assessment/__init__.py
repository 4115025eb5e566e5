"""Tests of ``assessment``."""
