"""Developer tools, never in the plugin ZIP: ``bench/`` (``make bench``), ``demo/`` (``make demo``), ``dev/``
(packaging, the test matrix, the installer check, generators) and ``sampledata/`` (``make data``).

The tools may import the plugin and the test suite's helpers (``deeplandcover.tests.helpers``); the plugin
and its test suite never import the tools (tests/test_structure.py checks it)."""
