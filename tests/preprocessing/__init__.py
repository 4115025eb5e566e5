"""Tests of ``preprocessing``."""
