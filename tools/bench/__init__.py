"""Benchmarks (``make bench``): each module prints one Markdown section of BENCHMARKS.md; shared helpers in
:mod:`.common`."""
