"""Detect Change: from-to change, change-vector analysis and change models. Imports no torch."""
