"""Compute Accuracy and Create Accuracy Points: metrics and area estimates (pure NumPy, also used by
training), reference reading, comparison, sampling, reports.

Imports no torch."""
