"""Detect Change: from-to change (with its transition codes), change vector analysis and change models.

Imports no torch."""
