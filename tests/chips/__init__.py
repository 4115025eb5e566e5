"""Tests of ``chips``."""
