"""Tests of ``installer``."""
