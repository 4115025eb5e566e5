"""The test suite of the plugin (a package: helpers in :mod:`.helpers`, imported relatively)."""
