"""Compute Accuracy: metrics (pure NumPy, also used by training), reference comparison, sampling, reports.

Imports no torch."""
