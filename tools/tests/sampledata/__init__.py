"""Tests of ``tools/sampledata`` (``make data``)."""
