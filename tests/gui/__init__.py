"""Tests that open every dialog in a real QGIS GUI application (offscreen), in child processes."""
