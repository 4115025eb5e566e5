"""Tests of ``change``."""
