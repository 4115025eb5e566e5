"""Classify Pixels: ONNX Runtime sessions, band matching, tiled reading, blending, writing.

Imports no torch."""
