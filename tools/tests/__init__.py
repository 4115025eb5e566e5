"""Tests of the developer tools (``tools/``): the sample-data fetcher, the demo, the plugin ZIP, the benchmarks' layout and
the workflow-model generator. A pytest folder of its own; ``make test`` runs it with ``tests/``."""
